#include "moss/sweep/journal.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "moss/core/error.h"
#include "moss/core/file_io.h"

namespace moss::sweep {

namespace {

[[noreturn]] void io_failure(const std::string& what, const std::string& path) {
  throw RuntimeFailure(what + " " + path + ": " + std::strerror(errno));
}

}  // namespace

Journal::Journal(std::string path, bool sync) : path_(std::move(path)), sync_(sync) {
  fd_ = ::open(path_.c_str(), O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd_ < 0) io_failure("cannot open the sweep journal", path_);
  // Cut a line torn by a crash, or the next record would be glued onto it.
  const off_t size = ::lseek(fd_, 0, SEEK_END);
  if (size > 0) {
    std::ifstream in(path_, std::ios::binary);
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    const std::size_t keep = text.rfind('\n') == std::string::npos ? 0 : text.rfind('\n') + 1;
    if (keep != text.size() && ::ftruncate(fd_, static_cast<off_t>(keep)) != 0) io_failure("cannot truncate", path_);
  }
}

Journal::~Journal() {
  if (fd_ >= 0) ::close(fd_);
}

void Journal::append(const PointRecord& record) {
  const std::string line = record.to_json().dump() + "\n";
  std::lock_guard lock(mutex_);
  write_all(fd_, line, path_);
  if (sync_ && ::fdatasync(fd_) != 0) io_failure("cannot fdatasync", path_);
}

std::map<std::int64_t, PointRecord> read_journals(const std::string& dir) {
  std::map<std::int64_t, PointRecord> out;
  namespace fs = std::filesystem;
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return out;
  std::vector<fs::path> files;
  for (const auto& e : fs::directory_iterator(dir))
    if (e.path().extension() == ".jsonl") files.push_back(e.path());
  std::sort(files.begin(), files.end());
  for (const auto& f : files) {
    std::ifstream in(f);
    std::string line;
    while (std::getline(in, line)) {
      if (in.eof()) break;  // no newline: a torn last line
      try {
        PointRecord r = PointRecord::from_json(nlohmann::json::parse(line));
        out.try_emplace(r.index, std::move(r));
      } catch (const std::exception&) {
        // A record cut by a crash: the point is simply run again.
      }
    }
  }
  return out;
}

}  // namespace moss::sweep
