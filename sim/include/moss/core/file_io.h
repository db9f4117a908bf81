#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace moss {

/// Writes all of `data` to the open file descriptor `fd`, retrying partial and interrupted writes.
/// Throws RuntimeFailure("cannot write <path>: <reason>") on an I/O error; `path` only names it.
void write_all(int fd, std::string_view data, const std::string& path);

/// What of a replaced file must survive a crash of the machine once replace_file has returned.
enum class Durability {
  kNone,             ///< the rename alone: a reader never sees a part (a cache: a lost entry is redone)
  kFile,             ///< also the file's bytes on disk before its name points at them (fsync)
  kFileAndDirectory, ///< also the directory entry (fsync of the parent directory after the rename)
};

/// A name for a temporary file beside `path`: "<path>.tmp-<host>-<pid>-<serial>-<random>", unique
/// across the threads, processes and hosts that may share the directory (MPI ranks on a network file
/// system), so that no writer ever opens another's temporary.
std::string temporary_name(const std::string& path);

/// Replaces `path` with `content` in one step: written to a new temporary_name(path) (O_EXCL), made
/// durable as `durability` says, then renamed over `path`. Readers see the old file or the whole new
/// one; a failure leaves the old file and removes the temporary. Throws RuntimeFailure naming `path`
/// and the reason ("...; disk full" for ENOSPC).
void replace_file(const std::string& path, std::string_view content, Durability durability);

/// replace_file's first steps alone: `content` written to a new temporary_name(path), made durable
/// as `durability` says (the file's bytes; the directory comes with install_file). Returns the
/// temporary's name, for install_file, or for the caller to unlink when it gives up. On failure
/// removes the temporary and throws as replace_file does.
std::string stage_file(const std::string& path, std::string_view content, Durability durability);

/// Renames a finished temporary file over `path` (replace_file's last step, for files that a library
/// writes itself), with the fsyncs `durability` asks for. On failure removes `temporary` and throws.
void install_file(const std::string& temporary, const std::string& path, Durability durability);

/// A file's version without where it is: "inode I size S modified M changed C" (times to the
/// nanosecond), the same on every node that mounts it and after a remount; a rewritten file has
/// another (the change time cannot be set by copy tools). nullopt when it cannot be examined.
[[nodiscard]] std::optional<std::string> file_version(const std::string& path);

/// fsync of a file or directory by name. Throws RuntimeFailure("cannot fsync <path>: <reason>").
void sync_path(const std::string& path);

}  // namespace moss
