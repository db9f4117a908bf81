// Linked into every test executable: tests never read or fill the user's measurement cache, whether
// they run under ctest (which sets the same) or by hand. Tests of the cache name their own directory.
#include <stdlib.h>

namespace {
[[maybe_unused]] const int kNoUserCache = ::setenv("MOSS_CACHE_DIR", "off", 1);
}  // namespace
