#include "output.h"

#include <cctype>
#include <filesystem>
#include <system_error>

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "moss/core/error.h"

namespace moss::app {

void ensure_directory(const std::string& dir) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec || !std::filesystem::is_directory(dir)) {
    throw RuntimeFailure(dir + ": cannot create the output directory: " + (ec ? ec.message() : "not a directory"));
  }
}

void write_file_atomic(const std::string& path, const std::string& content) {
  const std::string tmp = path + ".tmp." + std::to_string(::getpid());
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) {
    throw RuntimeFailure(path + ": cannot write (" + std::strerror(errno) + ")");
  }
  // write() may be partial; a full disk shows up here (ENOSPC, EFBIG) or at fsync/close (quota, NFS).
  std::size_t done = 0;
  int error = 0;
  while (done < content.size()) {
    const ssize_t n = ::write(fd, content.data() + done, content.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      error = n < 0 ? errno : EIO;
      break;
    }
    done += static_cast<std::size_t>(n);
  }
  // fsync before the rename, so that after a crash the name points at the whole file or the old one.
  if (error == 0 && ::fsync(fd) != 0) error = errno;
  if (::close(fd) != 0 && error == 0) error = errno;
  if (error != 0) {
    ::unlink(tmp.c_str());
    throw RuntimeFailure(path + ": write failed (" + std::strerror(error) + (error == ENOSPC ? "; disk full)" : ")"));
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  if (ec) {
    ::unlink(tmp.c_str());
    throw RuntimeFailure(path + ": cannot move the finished file into place: " + ec.message());
  }
}

std::string safe_name(const std::string& name) {
  std::string out;
  for (char c : name) {
    const bool ok = std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-';
    out += ok ? c : '_';
  }
  while (!out.empty() && out.front() == '.') out.erase(out.begin());
  return out.empty() ? "scenario" : out;
}

}  // namespace moss::app
