#pragma once
// ns-3 code: included only by this folder's translation units (C++17, see STYLE.md).

#include <cstdint>
#include <string>

#include "ns3/tcp-congestion-ops.h"

namespace moss::net {

/// Any ns-3 congestion control with its window clamped at a maximum (Linux's snd_cwnd_clamp).
/// Used on lossy paths so that the socket's send buffer can hold more than the window: when
/// the window filled the send buffer, every loss recovery found no unsent data and ns-3 3.37's
/// NextSeg rule 3 resent hundreds of segments that were not lost (README, "Loss").
class CappedCongestionOps final : public ns3::TcpCongestionOps {
 public:
  static ns3::TypeId GetTypeId();
  CappedCongestionOps() = default;
  /// inner: the congestion control to clamp (its own state); max_cwnd_bytes: the clamp.
  CappedCongestionOps(ns3::Ptr<ns3::TcpCongestionOps> inner, std::uint32_t max_cwnd_bytes);
  CappedCongestionOps(const CappedCongestionOps& other);

  std::string GetName() const override;
  void Init(ns3::Ptr<ns3::TcpSocketState> tcb) override;
  std::uint32_t GetSsThresh(ns3::Ptr<const ns3::TcpSocketState> tcb,
                            std::uint32_t bytes_in_flight) override;
  void IncreaseWindow(ns3::Ptr<ns3::TcpSocketState> tcb, std::uint32_t segments_acked) override;
  void PktsAcked(ns3::Ptr<ns3::TcpSocketState> tcb, std::uint32_t segments_acked, const ns3::Time& rtt) override;
  void CongestionStateSet(ns3::Ptr<ns3::TcpSocketState> tcb,
                          const ns3::TcpSocketState::TcpCongState_t new_state) override;
  void CwndEvent(ns3::Ptr<ns3::TcpSocketState> tcb, const ns3::TcpSocketState::TcpCAEvent_t event) override;
  bool HasCongControl() const override;
  void CongControl(ns3::Ptr<ns3::TcpSocketState> tcb, const ns3::TcpRateOps::TcpRateConnection& rc,
                   const ns3::TcpRateOps::TcpRateSample& rs) override;
  ns3::Ptr<ns3::TcpCongestionOps> Fork() override;

 private:
  void clamp(const ns3::Ptr<ns3::TcpSocketState>& tcb) const;

  ns3::Ptr<ns3::TcpCongestionOps> inner_;
  std::uint32_t max_cwnd_bytes_ = 0;
};

}  // namespace moss::net
