# Local stand-in until tests/CMakeLists.txt has add_subdirectory(reliability): pass
# -DCMAKE_PROJECT_moss_INCLUDE=<this file> to add tests/reliability after every target exists.
cmake_language(DEFER DIRECTORY ${CMAKE_SOURCE_DIR} CALL include
               ${CMAKE_SOURCE_DIR}/tests/reliability/CMakeLists.txt)
