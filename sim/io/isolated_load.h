#pragma once
// Running a file loader in a forked child process (private to moss_io).
//
// Debian's libhdf5 1.10 dereferences NULL (and worse) on some corrupt files: a crash there would take
// moss down with it, whatever moss checks first. The loader therefore runs in a child process that
// sends the loaded tensors back through a pipe; if the child dies, the caller gets an InputError
// naming the file instead of a crash.

#include <string>

#include "moss/io/activations.h"

namespace moss::io::detail {

/// A loader run inside the child; it may throw InputError (sent back and rethrown in the parent).
using Loader = Activations (*)(const std::string& path);

/// Runs `load(path)` in a forked child and returns its result. Rethrows the child's InputError; any
/// other exception in the child becomes RuntimeFailure; a child killed by a signal or exiting without
/// a complete answer becomes InputError(path, "", "<library> crashed ...: expected a valid <format>
/// file"). Peak memory is twice the tensors (child and parent copies). The child writes nothing to
/// stdout or stderr and leaves with _exit (no atexit handlers of the parent run twice).
Activations load_in_child(const std::string& path, Loader load, const std::string& library,
                          const std::string& format);

}  // namespace moss::io::detail
