#pragma once

#include <string>
#include <string_view>

namespace moss {

/// Writes all of `data` to the open file descriptor `fd`, retrying partial and interrupted writes.
/// Throws RuntimeFailure("cannot write <path>: <reason>") on an I/O error; `path` only names it.
void write_all(int fd, std::string_view data, const std::string& path);

}  // namespace moss
