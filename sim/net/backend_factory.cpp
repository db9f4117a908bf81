#include "moss/net/backend_factory.h"

#include "moss/core/error.h"
#include "moss/net/analytic_backend.h"
#ifdef MOSS_HAVE_NS3
#include "moss/net/ns3_backend.h"
#endif

namespace moss::net {

std::vector<std::string> available_backends() {
#ifdef MOSS_HAVE_NS3
  return {"analytic", "ns3"};
#else
  return {"analytic"};
#endif
}

std::unique_ptr<NetworkBackend> make_backend(const std::string& name, const Topology& topology,
                                             const TransportConfig& transport,
                                             const PacketOptions& packet) {
  if (name == "analytic") return std::make_unique<AnalyticBackend>(topology, transport);
#ifdef MOSS_HAVE_NS3
  if (name == "ns3") return make_ns3_backend(topology, transport, packet);
#endif
  std::string known;
  for (const auto& b : available_backends()) known += (known.empty() ? "" : ", ") + b;
  throw InputError("", "/simulation/backend",
                   "\"" + name + "\" is not a backend of this build; expected one of: " + known);
}

}  // namespace moss::net
