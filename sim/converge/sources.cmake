# Extra sources of moss_converge; include()d from sim/CMakeLists.txt after add_library(moss_converge).
target_sources(moss_converge PRIVATE
  ${CMAKE_CURRENT_LIST_DIR}/calibration.cpp
  ${CMAKE_CURRENT_LIST_DIR}/cost.cpp)
target_compile_definitions(moss_converge PRIVATE MOSS_CONVERGE_SPLIT_SOURCES=1)
