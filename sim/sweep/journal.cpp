#include "moss/sweep/journal.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <vector>

#include "moss/core/error.h"
#include "moss/core/file_io.h"

namespace moss::sweep {

namespace {

[[noreturn]] void io_failure(const std::string& what, const std::string& path) {
  throw RuntimeFailure(what + " " + path + ": " + std::strerror(errno));
}

// Longest journal line read back: a record is a scenario and a summary, kilobytes; a longer "line"
// (a file of zeros, a foreign file) is skipped without holding it in memory.
constexpr std::size_t kMaxLine = std::size_t{64} << 20;

// Lines of a journal without their newlines, read in blocks. A last line without its newline (torn
// by a crash) is not returned; a line over kMaxLine comes back empty and `too_long`.
class LineReader {
 public:
  explicit LineReader(std::istream& in) : in_(in), block_(std::size_t{1} << 20) {}

  bool next(std::string& line, bool& too_long) {
    line.clear();
    too_long = false;
    for (;;) {
      if (at_ == size_) {
        in_.read(block_.data(), static_cast<std::streamsize>(block_.size()));
        size_ = static_cast<std::size_t>(in_.gcount()), at_ = 0;
        if (size_ == 0) return false;
      }
      const char* begin = block_.data() + at_;
      const auto* nl = static_cast<const char*>(std::memchr(begin, '\n', size_ - at_));
      const std::size_t n = nl ? static_cast<std::size_t>(nl - begin) : size_ - at_;
      if (line.size() + n <= kMaxLine) line.append(begin, n);
      else too_long = true;
      at_ += n + (nl ? 1 : 0);
      if (nl) {
        if (too_long) line.clear();
        return true;
      }
    }
  }

 private:
  std::istream& in_;
  std::vector<char> block_;
  std::size_t at_ = 0, size_ = 0;
};

// Offset just past the last newline of the open file `fd` of `size` bytes (0 when none), read back
// from the end in blocks (a journal may be large; it is never read whole here).
off_t end_of_last_line(int fd, off_t size, const std::string& path) {
  char block[65536];
  for (off_t end = size; end > 0;) {
    const off_t begin = end > static_cast<off_t>(sizeof block) ? end - static_cast<off_t>(sizeof block) : 0;
    const ssize_t n = ::pread(fd, block, static_cast<std::size_t>(end - begin), begin);
    if (n != end - begin) io_failure("cannot read", path);
    for (ssize_t i = n; i > 0; --i)
      if (block[i - 1] == '\n') return begin + i;
    end = begin;
  }
  return 0;
}

}  // namespace

void check_sweep_file(const std::string& path, const std::string& what) {
  std::error_code ec;
  const auto status = std::filesystem::status(path, ec);  // through symbolic links
  if (!ec && std::filesystem::exists(status) && !std::filesystem::is_regular_file(status))
    throw InputError(path, "", "is not a regular file (a FIFO, socket, device or directory): expected the sweep's " + what +
                                   " as moss writes it; remove it or give another --out");
}

Journal::Journal(std::string path, bool sync) : path_(std::move(path)), sync_(sync) {
  check_sweep_file(path_, "journal");
  fd_ = ::open(path_.c_str(), O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd_ < 0) io_failure("cannot open the sweep journal", path_);
  // Cut a line torn by a crash, or the next record would be glued onto it.
  const off_t size = ::lseek(fd_, 0, SEEK_END);
  if (size > 0) {
    const off_t keep = end_of_last_line(fd_, size, path_);
    if (keep != size && ::ftruncate(fd_, keep) != 0) io_failure("cannot truncate", path_);
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
    check_sweep_file(f.string(), "journal");
    std::ifstream in(f, std::ios::binary);
    LineReader reader(in);
    std::string line;
    bool too_long = false;
    while (reader.next(line, too_long)) {  // a last line without its newline was torn: not read
      if (too_long) continue;  // not a record moss wrote: the points it might have held run again
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
