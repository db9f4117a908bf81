// The only translation units of moss that include ns-3 live in this folder (C++17, see STYLE.md).
#include "packet_phase.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <memory>
#include <mutex>

#include "ns3/core-module.h"
#include "ns3/internet-module.h"
#include "ns3/network-module.h"
#include "ns3/point-to-point-module.h"
#include "ns3/traffic-control-module.h"
#include "capped_congestion_ops.h"
#include "rate_tracker.h"

namespace moss::net {

const char* ns3_tcp_type_name(const std::string& variant) {
  static const std::pair<const char*, const char*> kVariants[] = {
      {"cubic", "ns3::TcpCubic"},       {"newreno", "ns3::TcpNewReno"},
      {"reno", "ns3::TcpNewReno"},      {"bbr", "ns3::TcpBbr"},
      {"bic", "ns3::TcpBic"},           {"htcp", "ns3::TcpHtcp"},
      {"highspeed", "ns3::TcpHighSpeed"}, {"vegas", "ns3::TcpVegas"},
      {"westwood", "ns3::TcpWestwood"}, {"scalable", "ns3::TcpScalable"},
      {"illinois", "ns3::TcpIllinois"}, {"yeah", "ns3::TcpYeah"},
      {"hybla", "ns3::TcpHybla"},       {"veno", "ns3::TcpVeno"},
      {"ledbat", "ns3::TcpLedbat"},     {"lp", "ns3::TcpLp"}};
  for (const auto& [name, type] : kVariants) {
    if (variant == name) return type;
  }
  return "";
}

double socket_buffer_bytes(const Topology& topology, const TransportConfig& transport, int src,
                           int dst) {
  if (transport.socket_buffer_bytes > 0) return transport.socket_buffer_bytes;
  const double rtt_s = topology.path_latency_s(src, dst) + topology.path_latency_s(dst, src);
  const double bdp_bytes = topology.path_bandwidth_bps(src, dst) / 8 * rtt_s;
  return bdp_bytes + 8.0 * topology.path_mtu_bytes(src, dst);
}

namespace {

// Bits a SYN / SYN-ACK puts on each hop (IP + TCP with options + PPP), for the handshake time.
constexpr double kSynWireBits = 66 * 8;
constexpr std::uint16_t kFirstPort = 10000;

struct FlowHook;

// Everything one phase needs while ns-3 runs. Built, run and torn down by simulate_packet_phase.
class PhaseWorld {
 public:
  PhaseWorld(const Topology& topo, const TransportConfig& transport, const Phase& flows,
             const PacketPhasePlan& plan);
  PacketPhaseOutcome run();

  void on_received(FlowHook& hook, std::uint32_t bytes);
  [[nodiscard]] const std::string& tcp_variant() const { return transport_.tcp_variant; }

 private:
  void build_links();
  void install_routes();
  void install_flows();
  void sample();
  void update_sharing(double phase_now_s);
  void try_fast_forward(double phase_now_s);
  void skip(double dt_s, FlowHook& h, double rate_Bps, double retransmissions_per_byte);

  const Topology& topo_;
  const TransportConfig& transport_;
  const Phase& flows_;
  PacketPhasePlan plan_;
  ns3::NodeContainer nodes_;
  struct LinkDevices {
    ns3::Ptr<ns3::PointToPointNetDevice> dev[2];
    std::uint32_t if_index[2] = {0, 0};
    ns3::Ipv4Address addr[2];
  };
  std::vector<LinkDevices> links_;
  std::vector<std::unique_ptr<FlowHook>> hooks_;
  std::vector<double> channel_wire_bytes_;
  double t0_s_ = 0;        // absolute time at which the phase's data may start
  double skipped_s_ = 0;   // simulated time fast-forwarded so far (phase time = sim time + this)
  std::uint64_t budget_mark_ = 0;  // event count after which a fast-forward may use mean rates
  double interval_s_ = 0;  // sampling interval of the steady-state detector
  std::size_t started_ = 0;
  bool share_changed_ = false;
  std::size_t unfinished_ = 0;
  PacketPhaseOutcome out_;
};

struct FlowHook {
  PhaseWorld* world = nullptr;
  std::size_t index = 0;
  std::uint64_t total_bytes = 0;
  std::uint64_t sent_bytes = 0;
  std::uint64_t received_bytes = 0;
  std::uint32_t segment_bytes = 0;
  double buffer_bytes = 0;  // the window's cap (socket_buffer_bytes)
  bool lossy = false;       // the data path drops packets at random
  std::vector<ChannelId> data_path;  // directed channels of the data, then of the ACKs
  std::vector<ChannelId> ack_path;
  bool shared = false;      // another running flow's data crosses data_path or ack_path
  bool any_tx = false;
  ns3::SequenceNumber32 high_tx;
  std::uint64_t retransmissions = 0;
  std::uint64_t loss_episodes = 0;  // entries into fast recovery or timeout recovery
  std::uint64_t timeouts = 0;
  bool finished = false;
  bool gave_up = false;     // TCP closed the connection with an error: a retry limit ran out
  double finish_abs_s = 0;  // absolute, fast-forwards included
  RateTracker tracker;
  ns3::Ptr<ns3::Socket> sender;
  // Fast-forward bookkeeping.
  double syn_abs_s = 0;      // simulator time of the SYN (moves earlier with each fast-forward)
  bool syn_sent = false;
  ns3::EventId start_event;
  std::uint64_t skipped_bytes = 0;
  double skipped_retransmissions = 0;
};

void on_phy_tx(double* bytes, ns3::Ptr<const ns3::Packet> p) { *bytes += p->GetSize(); }

// Error-model drops; a pure ACK is at most ~100 bytes on the wire (headers, options, SACK blocks).
void on_phy_rx_drop(PacketPhaseOutcome* out, ns3::Ptr<const ns3::Packet> p) {
  ++out->dropped_packets;
  if (p->GetSize() > 128) ++out->dropped_data_packets;
}

// A loss episode starts when the sender enters fast recovery or timeout recovery (a timeout in
// the middle of a fast recovery is a new episode: the window collapses again).
void on_cong_state(FlowHook* h, ns3::TcpSocketState::TcpCongState_t before,
                   ns3::TcpSocketState::TcpCongState_t now);

void on_tcp_tx(FlowHook* h, ns3::Ptr<const ns3::Packet> p, const ns3::TcpHeader& header,
               ns3::Ptr<const ns3::TcpSocketBase>) {
  if (p->GetSize() == 0) return;
  const ns3::SequenceNumber32 end = header.GetSequenceNumber() + p->GetSize();
  if (h->any_tx && header.GetSequenceNumber() < h->high_tx) ++h->retransmissions;
  if (!h->any_tx || end > h->high_tx) h->high_tx = end;
  h->any_tx = true;
}

// Bulk sender: keeps the socket's send buffer full until every byte is handed to TCP.
void send_more(FlowHook* h, ns3::Ptr<ns3::Socket> s, std::uint32_t) {
  while (h->sent_bytes < h->total_bytes) {
    const std::uint32_t room = s->GetTxAvailable();
    if (room == 0) return;
    const auto chunk = static_cast<std::uint32_t>(
        std::min<std::uint64_t>({room, h->total_bytes - h->sent_bytes, 1u << 20}));
    const int sent = s->Send(ns3::Create<ns3::Packet>(chunk));
    if (sent <= 0) return;
    h->sent_bytes += static_cast<std::uint64_t>(sent);
  }
}

void on_connected(FlowHook* h, ns3::Ptr<ns3::Socket> s) { send_more(h, s, 0); }

// The connection failed, or closed with an error: ns-3's TCP retransmits a SYN or a segment a
// limited number of times (ConnCount, DataRetries: 6) and then gives up, as at heavy loss.
void on_gave_up(FlowHook* h, ns3::Ptr<ns3::Socket>) { h->gave_up = true; }

void on_recv(FlowHook* h, ns3::Ptr<ns3::Socket> s) {
  while (ns3::Ptr<ns3::Packet> p = s->Recv()) {
    if (p->GetSize() == 0) break;
    h->world->on_received(*h, p->GetSize());
  }
}

void on_accept(FlowHook* h, ns3::Ptr<ns3::Socket> s, const ns3::Address&) {
  s->SetRecvCallback(ns3::MakeBoundCallback(&on_recv, h));
}

void configure_socket(const ns3::Ptr<ns3::Socket>& s, const FlowHook& h) {
  s->SetAttribute("SegmentSize", ns3::UintegerValue(h.segment_bytes));
  // Clean paths: the send buffer caps the window (the sender never has more than it
  // unacknowledged). Lossy paths: a clamp on the congestion window caps it (start_sender) and
  // the send buffer is twice the cap, so a loss recovery always finds unsent data to send:
  // with the buffer full of the window, ns-3 3.37's NextSeg rule 3 resent ~200 segments that
  // were not lost per loss (README). The receive buffer is twice the send buffer so the
  // advertised window never binds: when ns-3 3.37 is limited by the peer's window during SACK
  // recovery it can cut a zero-byte segment and crash (segfault in TcpRateLinux::SkbSent).
  const double buffer = h.lossy ? 2 * std::min(h.buffer_bytes, 1.0e9) : std::min(h.buffer_bytes, 2.0e9);
  s->SetAttribute("SndBufSize", ns3::UintegerValue(static_cast<std::uint32_t>(buffer)));
  s->SetAttribute("RcvBufSize", ns3::UintegerValue(static_cast<std::uint32_t>(2 * buffer)));
  s->SetAttribute("InitialCwnd", ns3::UintegerValue(10));  // RFC 6928, Linux default
  s->SetAttribute("DelAckCount", ns3::UintegerValue(2));
  s->SetAttribute("DelAckTimeout", ns3::TimeValue(ns3::MilliSeconds(40)));  // Linux minimum
  s->SetAttribute("MinRto", ns3::TimeValue(ns3::MilliSeconds(200)));         // Linux
}

void on_cong_state(FlowHook* h, ns3::TcpSocketState::TcpCongState_t before,
                   ns3::TcpSocketState::TcpCongState_t now) {
  using S = ns3::TcpSocketState;
  if (now == S::CA_LOSS && before != S::CA_LOSS) {
    ++h->timeouts;
    ++h->loss_episodes;
  } else if (now == S::CA_RECOVERY && before != S::CA_RECOVERY && before != S::CA_LOSS) {
    ++h->loss_episodes;
  }
}

void start_sender(FlowHook* h, ns3::Ptr<ns3::Node> node, ns3::Address peer) {
  h->syn_sent = true;
  h->sender = ns3::Socket::CreateSocket(node, ns3::TcpSocketFactory::GetTypeId());
  configure_socket(h->sender, *h);
  if (h->lossy) {
    ns3::ObjectFactory variant;
    variant.SetTypeId(ns3::TypeId::LookupByName(ns3_tcp_type_name(h->world->tcp_variant())));
    const auto cap = static_cast<std::uint32_t>(std::min(h->buffer_bytes, 1.0e9));
    ns3::DynamicCast<ns3::TcpSocketBase>(h->sender)->SetCongestionControlAlgorithm(
        ns3::CreateObject<CappedCongestionOps>(variant.Create<ns3::TcpCongestionOps>(), cap));
  }
  h->sender->TraceConnectWithoutContext("Tx", ns3::MakeBoundCallback(&on_tcp_tx, h));
  h->sender->TraceConnectWithoutContext("CongState", ns3::MakeBoundCallback(&on_cong_state, h));
  h->sender->Bind();
  h->sender->SetConnectCallback(ns3::MakeBoundCallback(&on_connected, h), ns3::MakeBoundCallback(&on_gave_up, h));
  h->sender->SetCloseCallbacks(ns3::MakeNullCallback<void, ns3::Ptr<ns3::Socket>>(), ns3::MakeBoundCallback(&on_gave_up, h));
  h->sender->SetSendCallback(ns3::MakeBoundCallback(&send_more, h));
  h->sender->Connect(peer);
}

PhaseWorld::PhaseWorld(const Topology& topo, const TransportConfig& transport, const Phase& flows,
                       const PacketPhasePlan& plan)
    : topo_(topo), transport_(transport), flows_(flows), plan_(plan) {}

void PhaseWorld::build_links() {
  const auto& links = topo_.links();
  const std::size_t n_channels = links.size() * 2;
  // Queue per channel, from the longest round trip routed over it.
  std::vector<double> max_rtt_s(n_channels, 0.0);
  for (int s = 0; s < topo_.gpus(); ++s) {
    for (int d = 0; d < topo_.gpus(); ++d) {
      if (s == d) continue;
      const double rtt = topo_.path_latency_s(s, d) + topo_.path_latency_s(d, s);
      for (ChannelId c : topo_.route(s, d)) {
        max_rtt_s[static_cast<std::size_t>(c)] = std::max(max_rtt_s[static_cast<std::size_t>(c)], rtt);
      }
    }
  }
  ns3::PointToPointHelper p2p;
  ns3::Ipv4AddressHelper addresses("10.0.0.0", "255.255.255.252");
  ns3::TrafficControlHelper no_qdisc;
  links_.resize(links.size());
  for (std::size_t l = 0; l < links.size(); ++l) {
    const Link& link = links[l];
    // ns-3 has one delay per channel: both directions get the mean (it keeps every RTT exact);
    // the one-way difference is added back to each flow's finish time by the backend.
    p2p.SetChannelAttribute("Delay",
                            ns3::TimeValue(ns3::Seconds((link.ab.latency_s + link.ba.latency_s) / 2)));
    ns3::NetDeviceContainer devs = p2p.Install(nodes_.Get(link.a), nodes_.Get(link.b));
    const Channel* out[2] = {&link.ab, &link.ba};
    for (int side = 0; side < 2; ++side) {
      auto dev = ns3::DynamicCast<ns3::PointToPointNetDevice>(devs.Get(side));
      const Channel& tx = *out[side];
      const Channel& rx = *out[1 - side];
      dev->SetDataRate(ns3::DataRate(static_cast<std::uint64_t>(std::max(tx.bandwidth_bps, 1e3))));
      dev->SetMtu(static_cast<std::uint16_t>(tx.mtu_bytes));
      // A whole default window (2 BDP + 16 MTU): a lone flow never overflows it, flows that
      // share the channel still do (and recover as TCP does).
      const double bdp_packets =
          (2 * tx.bandwidth_bps / 8 * max_rtt_s[2 * l + side] + 16.0 * tx.mtu_bytes) / (tx.mtu_bytes - 52) + 16;
      const auto queue_packets = static_cast<std::uint32_t>(std::max(100.0, std::ceil(bdp_packets)));
      dev->GetQueue()->SetMaxSize(ns3::QueueSize(ns3::QueueSizeUnit::PACKETS, queue_packets));
      if (rx.loss > 0) {
        auto em = ns3::CreateObject<ns3::RateErrorModel>();
        em->SetUnit(ns3::RateErrorModel::ERROR_UNIT_PACKET);
        em->SetRate(rx.loss);
        em->AssignStreams(static_cast<std::int64_t>(2 * l + 1 - side));  // same draws every phase
        dev->SetReceiveErrorModel(em);
        dev->TraceConnectWithoutContext("PhyRxDrop", ns3::MakeBoundCallback(&on_phy_rx_drop, &out_));
      }
      dev->TraceConnectWithoutContext(
          "PhyTxEnd", ns3::MakeBoundCallback(&on_phy_tx, &channel_wire_bytes_[2 * l + side]));
      links_[l].dev[side] = dev;
    }
    ns3::Ipv4InterfaceContainer ifs = addresses.Assign(devs);
    addresses.NewNetwork();
    no_qdisc.Uninstall(devs);  // drop-tail device queue only, sized above
    for (int side = 0; side < 2; ++side) {
      links_[l].if_index[side] = ifs.Get(side).second;
      links_[l].addr[side] = ifs.GetAddress(side);
    }
  }
}

// Host routes that follow Topology::route, so ns-3 and the analytic model use the same paths.
// Routing is per destination: where two routes to one GPU leave a vertex by different channels,
// the first one (lowest source id) wins.
void PhaseWorld::install_routes() {
  const int gpus = topo_.gpus();
  std::vector<ChannelId> next(static_cast<std::size_t>(topo_.vertices()) * gpus, -1);
  for (int s = 0; s < gpus; ++s) {
    for (int d = 0; d < gpus; ++d) {
      if (s == d) continue;
      for (ChannelId c : topo_.route(s, d)) {
        ChannelId& slot = next[static_cast<std::size_t>(topo_.channel_from(c)) * gpus + d];
        if (slot < 0) slot = c;
      }
    }
  }
  ns3::Ipv4StaticRoutingHelper helper;
  for (int v = 0; v < topo_.vertices(); ++v) {
    auto routing = helper.GetStaticRouting(nodes_.Get(v)->GetObject<ns3::Ipv4>());
    for (int d = 0; d < gpus; ++d) {
      const ChannelId c = next[static_cast<std::size_t>(v) * gpus + d];
      if (c < 0) continue;
      const LinkDevices& via = links_[static_cast<std::size_t>(c / 2)];
      const int side = c % 2;
      for (std::size_t l = 0; l < topo_.links().size(); ++l) {  // every address of GPU d
        const Link& link = topo_.links()[l];
        for (int dside = 0; dside < 2; ++dside) {
          if ((dside == 0 ? link.a : link.b) != d) continue;
          routing->AddHostRouteTo(links_[l].addr[dside], via.addr[1 - side], via.if_index[side]);
        }
      }
    }
  }
}

void PhaseWorld::install_flows() {
  hooks_.reserve(flows_.size());
  for (std::size_t i = 0; i < flows_.size(); ++i) {
    const Flow& f = flows_[i];
    auto h = std::make_unique<FlowHook>();
    h->world = this;
    h->index = i;
    h->total_bytes = static_cast<std::uint64_t>(std::ceil(f.bytes));
    h->segment_bytes =
        static_cast<std::uint32_t>(topo_.path_mtu_bytes(f.src, f.dst) - transport_.ip_tcp_header_bytes);
    h->buffer_bytes = socket_buffer_bytes(topo_, transport_, f.src, f.dst);
    h->data_path = topo_.route(f.src, f.dst);
    h->ack_path = topo_.route(f.dst, f.src);
    for (ChannelId c : h->data_path) h->lossy = h->lossy || topo_.channel(c).loss > 0;
    hooks_.push_back(std::move(h));
  }
  // Connections are set up before the phase (collective libraries keep them open): each SYN
  // leaves one handshake earlier than its flow's start, so data flows from start_s on.
  std::vector<double> handshake_s(flows_.size(), 0.0);
  for (std::size_t i = 0; i < flows_.size(); ++i) {
    for (int dir = 0; dir < 2; ++dir) {
      const Flow& f = flows_[i];
      for (ChannelId c : topo_.route(dir == 0 ? f.src : f.dst, dir == 0 ? f.dst : f.src)) {
        const Link& link = topo_.links()[static_cast<std::size_t>(c / 2)];
        handshake_s[i] += (link.ab.latency_s + link.ba.latency_s) / 2 +
                          kSynWireBits / topo_.channel(c).bandwidth_bps;
      }
    }
    t0_s_ = std::max(t0_s_, handshake_s[i]);
  }
  for (std::size_t i = 0; i < flows_.size(); ++i) {
    const Flow& f = flows_[i];
    FlowHook* h = hooks_[i].get();
    const auto port = static_cast<std::uint16_t>(kFirstPort + i);
    auto listener = ns3::Socket::CreateSocket(nodes_.Get(f.dst), ns3::TcpSocketFactory::GetTypeId());
    configure_socket(listener, *h);
    listener->Bind(ns3::InetSocketAddress(ns3::Ipv4Address::GetAny(), port));
    listener->Listen();
    listener->SetAcceptCallback(
        ns3::MakeNullCallback<bool, ns3::Ptr<ns3::Socket>, const ns3::Address&>(),
        ns3::MakeBoundCallback(&on_accept, h));
    const ns3::Ipv4Address dst_addr = ns3::Ipv4Address(
        nodes_.Get(f.dst)->GetObject<ns3::Ipv4>()->GetAddress(1, 0).GetLocal());
    h->syn_abs_s = t0_s_ + f.start_s - handshake_s[i];
    h->start_event = ns3::Simulator::Schedule(ns3::Seconds(h->syn_abs_s), &start_sender, h, nodes_.Get(f.src),
                                              ns3::Address(ns3::InetSocketAddress(dst_addr, port)));
  }
  unfinished_ = flows_.size();
}

void PhaseWorld::on_received(FlowHook& h, std::uint32_t bytes) {
  h.received_bytes += bytes;
  if (h.finished || h.received_bytes < h.total_bytes) return;
  h.finished = true;
  h.finish_abs_s = ns3::Simulator::Now().GetSeconds() + skipped_s_;
  share_changed_ = true;
  if (--unfinished_ == 0) ns3::Simulator::Stop();
}

void PhaseWorld::sample() {
  // With every unfinished flow given up, this sampling is all that is left to run: it would go on
  // for ever (and its records grow without bound).
  if (std::all_of(hooks_.begin(), hooks_.end(), [](const auto& h) { return h->finished || h->gave_up; })) {
    ns3::Simulator::Stop();
    return;
  }
  const double now_sim = ns3::Simulator::Now().GetSeconds() - t0_s_;
  const double phase_now = now_sim + skipped_s_;
  std::size_t begun = 0;
  for (const Flow& f : flows_) begun += f.start_s <= phase_now ? 1 : 0;
  if (begun != started_) share_changed_ = true;
  started_ = begun;
  if (share_changed_) update_sharing(phase_now);
  for (auto& h : hooks_) {
    if (h->finished) continue;
    if (share_changed_) h->tracker.restart();
    // Simulator time and simulated bytes: both continue smoothly across a fast-forward.
    if (flows_[h->index].start_s <= phase_now) {
      h->tracker.record(now_sim, double(h->received_bytes), h->retransmissions, h->loss_episodes);
    }
  }
  share_changed_ = false;
  try_fast_forward(phase_now);
  ns3::Simulator::Schedule(ns3::Seconds(interval_s_), &PhaseWorld::sample, this);
}

// Which running flows share a channel with another one, and the detector each gets: how flows
// split a channel oscillates over tens of RTTs (measured: +-5 % with a period of ~40 RTTs for
// two buffer-limited Cubic flows) and drifts after contention losses, so a shared flow's
// windows must span such a period and show no trend either way (README). A flow alone on its
// path keeps the short windows. Called when a flow starts or ends (the trackers restart then).
void PhaseWorld::update_sharing(double phase_now_s) {
  std::vector<int> data_flows(channel_wire_bytes_.size(), 0);
  const auto running = [&](const FlowHook& h) {
    return !h.finished && flows_[h.index].start_s <= phase_now_s;
  };
  for (auto& h : hooks_) {
    if (!running(*h)) continue;
    for (ChannelId c : h->data_path) ++data_flows[static_cast<std::size_t>(c)];
  }
  for (auto& h : hooks_) {
    if (!running(*h)) continue;
    bool shared = false;
    for (ChannelId c : h->data_path) shared = shared || data_flows[static_cast<std::size_t>(c)] > 1;
    for (ChannelId c : h->ack_path) shared = shared || data_flows[static_cast<std::size_t>(c)] > 0;
    h->shared = shared;
    if (h->lossy) continue;  // judged by loss epochs, which are long already
    h->tracker = shared ? RateTracker(plan_.shared_tolerance, plan_.shared_min_window_samples, false, true)
                        : RateTracker(plan_.steady_tolerance, 4);
  }
}

// When every running flow delivers at a steady rate, jump ahead: each running flow is credited
// the bytes its steady rate moves in dt, its remaining total shrinks by as much, and the clock
// of the phase advances by dt. TCP's state (windows, queues, timers) is the steady one, so the
// simulation then goes on packet by packet as if dt had passed. dt ends before any flow's last
// few windows and before the next flow starts, so every change of share (a flow ending or
// starting) and the transient after it are simulated, not extrapolated.
void PhaseWorld::try_fast_forward(double phase_now_s) {
  const double now_abs = ns3::Simulator::Now().GetSeconds();
  double dt = std::numeric_limits<double>::infinity();
  for (auto& h : hooks_) {
    if (h->syn_sent && flows_[h->index].start_s > phase_now_s) return;  // a flow is connecting
    if (!h->syn_sent) dt = std::min(dt, h->syn_abs_s - now_abs);
  }
  const bool over_budget = ns3::Simulator::GetEventCount() > budget_mark_;
  struct Running {
    FlowHook* h;
    double rate_Bps;
    double retransmissions_per_byte;
  };
  std::vector<Running> running;
  bool used_mean = false;
  for (auto& h : hooks_) {
    if (h->finished || flows_[h->index].start_s > phase_now_s) continue;
    if (const auto steady = h->tracker.steady()) {
      running.push_back({h.get(), steady->rate_Bps, steady->retransmissions_per_byte});
    } else if (over_budget && h->tracker.mean_rate_Bps() > 0) {
      running.push_back({h.get(), h->tracker.mean_rate_Bps(), h->tracker.mean_retransmissions_per_byte()});
      used_mean = true;
    } else {
      return;
    }
  }
  if (running.empty()) return;
  for (const Running& r : running) {
    // Keep what TCP already holds plus two windows and 64 segments to simulate the flow's end.
    const double keep = double(r.h->sent_bytes - r.h->received_bytes) + 2 * r.h->buffer_bytes +
                        64.0 * r.h->segment_bytes;
    const double remaining = double(r.h->total_bytes - r.h->received_bytes);
    dt = std::min(dt, (remaining - keep) / r.rate_Bps);
    // A shared flow's split is re-measured before its next jump: jump over a part of what
    // remains only, so a split that was caught off its mean is corrected by the next windows.
    // (Lossy flows are judged over ~100 loss epochs already: no cap.)
    if (r.h->shared && !r.h->lossy) dt = std::min(dt, plan_.shared_jump_fraction * remaining / r.rate_Bps);
  }
  if (!(dt > 0)) return;
  double packets = 0;
  for (const Running& r : running) packets += r.rate_Bps * dt / r.h->segment_bytes;
  if (packets < double(plan_.min_packets_to_extrapolate)) return;
  for (const Running& r : running) skip(dt, *r.h, r.rate_Bps, r.retransmissions_per_byte);
  skipped_s_ += dt;
  ++out_.fast_forwards;
  for (const Running& r : running) {  // measure shared splits afresh before the next jump
    if (r.h->shared && !r.h->lossy) r.h->tracker.restart();
  }
  out_.forced = out_.forced || used_mean;
  if (over_budget) budget_mark_ = ns3::Simulator::GetEventCount() + plan_.event_budget;
  for (auto& h : hooks_) {  // flows yet to connect start dt earlier in simulator time
    if (h->syn_sent) continue;
    ns3::Simulator::Cancel(h->start_event);
    h->syn_abs_s -= dt;
    const Flow& f = flows_[h->index];
    const ns3::Ipv4Address dst_addr = ns3::Ipv4Address(
        nodes_.Get(f.dst)->GetObject<ns3::Ipv4>()->GetAddress(1, 0).GetLocal());
    h->start_event = ns3::Simulator::Schedule(
        ns3::Seconds(std::max(0.0, h->syn_abs_s - now_abs)), &start_sender, h.get(), nodes_.Get(f.src),
        ns3::Address(ns3::InetSocketAddress(dst_addr, static_cast<std::uint16_t>(kFirstPort + h->index))));
  }
}

void PhaseWorld::skip(double dt_s, FlowHook& h, double rate_Bps, double retransmissions_per_byte) {
  const auto bytes = static_cast<std::uint64_t>(rate_Bps * dt_s);
  h.total_bytes -= bytes;
  h.skipped_bytes += bytes;
  h.skipped_retransmissions += retransmissions_per_byte * double(bytes);
  // Wire bytes the skipped stretch would have put on each channel: full segments with headers
  // and framing on the path, one ACK per two segments (delayed ACKs) on the way back.
  const Flow& f = flows_[h.index];
  const double segments = double(bytes) / h.segment_bytes;
  const double overhead = transport_.ip_tcp_header_bytes + transport_.link_header_bytes;
  for (ChannelId c : topo_.route(f.src, f.dst)) {
    channel_wire_bytes_[static_cast<std::size_t>(c)] += double(bytes) + segments * overhead;
  }
  for (ChannelId c : topo_.route(f.dst, f.src)) {
    channel_wire_bytes_[static_cast<std::size_t>(c)] += segments / 2 * overhead;
  }
}

PacketPhaseOutcome PhaseWorld::run() {
  ns3::RngSeedManager::SetSeed(static_cast<std::uint32_t>(std::max<std::uint64_t>(plan_.seed, 1)));
  ns3::RngSeedManager::SetRun(1);
  ns3::Config::SetDefault("ns3::TcpL4Protocol::SocketType",
                          ns3::TypeIdValue(ns3::TypeId::LookupByName(ns3_tcp_type_name(transport_.tcp_variant))));
  // HyStart off: the socket buffer already bounds the window, so slow start ends at that cap
  // without loss. With it on, ns-3's ACK-train test leaves slow start at about half the BDP on
  // fast short-RTT paths and Cubic then needs seconds to fill the pipe (README: measured 1.9x).
  ns3::Config::SetDefault("ns3::TcpCubic::HyStart", ns3::BooleanValue(false));
  channel_wire_bytes_.assign(topo_.links().size() * 2, 0.0);
  out_.flows.assign(flows_.size(), {});
  nodes_.Create(static_cast<std::uint32_t>(topo_.vertices()));
  ns3::InternetStackHelper stack;
  stack.SetIpv6StackInstall(false);
  stack.SetRoutingHelper(ns3::Ipv4StaticRoutingHelper());
  stack.Install(nodes_);
  build_links();
  install_routes();
  install_flows();
  // Sample once per round trip (at least 32 packet times) of the slowest flow.
  for (const Flow& f : flows_) {
    const double rtt = topo_.path_latency_s(f.src, f.dst) + topo_.path_latency_s(f.dst, f.src);
    const double pkt = (topo_.path_mtu_bytes(f.src, f.dst) + 2) * 8.0 / topo_.path_bandwidth_bps(f.src, f.dst);
    interval_s_ = std::max({interval_s_, rtt, 32 * pkt});
  }
  // Under random loss the rate is a sawtooth whose mean drifts for tens of seconds after slow
  // start (Cubic's window sinks from the buffer cap towards the loss-limited mean): a lossy
  // flow is steady only when windows of several whole loss epochs agree (RateTracker).
  for (auto& h : hooks_) {
    if (!h->lossy) {
      h->tracker = RateTracker(plan_.steady_tolerance, 4);
      continue;
    }
    // Payload between loss episodes: one segment in 1/p is dropped on the data path.
    const Flow& f = flows_[h->index];
    double delivered = 1;
    for (ChannelId c : topo_.route(f.src, f.dst)) delivered *= 1 - topo_.channel(c).loss;
    const double bytes_per_episode = plan_.lossy_control_variate ? h->segment_bytes / (1 - delivered) : 0.0;
    h->tracker = RateTracker(
        LossyWindows{plan_.lossy_tolerance, plan_.lossy_episodes, plan_.lossy_min_samples, bytes_per_episode});
  }
  budget_mark_ = plan_.event_budget;
  if (plan_.stop_when_steady) ns3::Simulator::Schedule(ns3::Seconds(t0_s_), &PhaseWorld::sample, this);
  ns3::Simulator::Run();
  out_.skipped_s = skipped_s_;
  out_.events = ns3::Simulator::GetEventCount();
  for (auto& h : hooks_) {
    PacketFlowOutcome& o = out_.flows[h->index];
    o.finished = h->finished;
    o.gave_up = h->gave_up;
    o.finish_s = h->finished ? h->finish_abs_s - t0_s_ : 0;
    o.delivered_bytes = double(h->received_bytes);
    o.skipped_bytes = double(h->skipped_bytes);
    o.retransmissions = h->retransmissions + static_cast<std::uint64_t>(std::llround(h->skipped_retransmissions));
    o.loss_episodes = h->loss_episodes;
    o.timeouts = h->timeouts;
  }
  out_.channel_wire_bytes = channel_wire_bytes_;
  ns3::Simulator::Destroy();  // while the hooks the callbacks point to still exist
  return out_;
}

}  // namespace

PacketPhaseOutcome simulate_packet_phase(const Topology& topology, const TransportConfig& transport,
                                         const Phase& flows, const PacketPhasePlan& plan) {
  // Picosecond resolution keeps packet serialisation times exact to 1 ps (ns would be 0.1 %
  // off per packet at 100 Gbps); the range, 106 days, is plenty.
  static std::once_flag resolution_once;
  std::call_once(resolution_once, [] { ns3::Time::SetResolution(ns3::Time::PS); });
  PhaseWorld world(topology, transport, flows, plan);
  return world.run();
}

}  // namespace moss::net
