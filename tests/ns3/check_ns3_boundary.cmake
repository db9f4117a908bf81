# Fails when a source outside sim/net/ns3/ includes an ns-3 header (STYLE.md, "The ns-3 boundary").
file(GLOB_RECURSE sources
  ${MOSS_ROOT}/sim/*.h ${MOSS_ROOT}/sim/*.cpp ${MOSS_ROOT}/sim/*.hpp
  ${MOSS_ROOT}/kernels/*.h ${MOSS_ROOT}/kernels/*.cpp ${MOSS_ROOT}/kernels/*.cu
  ${MOSS_ROOT}/tests/*.h ${MOSS_ROOT}/tests/*.cpp)
set(offenders "")
foreach(f IN LISTS sources)
  if(f MATCHES "/sim/net/ns3/")
    continue()
  endif()
  file(STRINGS ${f} hits REGEX "^[ \t]*#[ \t]*include[ \t]*[<\"]ns3/")
  if(hits)
    list(APPEND offenders ${f})
  endif()
endforeach()
if(offenders)
  message(FATAL_ERROR "ns-3 headers included outside sim/net/ns3/: ${offenders}")
endif()
message(STATUS "ns-3 boundary: ok")
