#include "moss/core/file_io.h"

#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "moss/core/error.h"

namespace moss {

void write_all(int fd, std::string_view data, const std::string& path) {
  while (!data.empty()) {
    const ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      throw RuntimeFailure("cannot write " + path + ": " + std::strerror(errno));
    }
    data.remove_prefix(static_cast<std::size_t>(n));
  }
}

}  // namespace moss
