# Used by scripts/fuzz.sh (via CMAKE_PROJECT_moss_INCLUDE) when the top-level CMakeLists.txt does not
# yet know MOSS_BUILD_FUZZ: adds tests/fuzz once every library target exists.
if(MOSS_BUILD_FUZZ)
  cmake_language(DEFER DIRECTORY ${CMAKE_SOURCE_DIR} CALL include
                 ${CMAKE_SOURCE_DIR}/tests/fuzz/CMakeLists.txt)
endif()
