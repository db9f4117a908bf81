# Warnings shared by every moss target.
add_library(moss_warnings INTERFACE)
add_library(moss::warnings ALIAS moss_warnings)
target_compile_options(moss_warnings INTERFACE
  $<$<COMPILE_LANGUAGE:CXX>:-Wall -Wextra -Wpedantic -Wshadow=local -Wno-unused-parameter>)
