#include "capped_congestion_ops.h"

#include <utility>

namespace moss::net {

ns3::TypeId CappedCongestionOps::GetTypeId() {
  static ns3::TypeId tid = ns3::TypeId("moss::CappedCongestionOps")
                               .SetParent<ns3::TcpCongestionOps>()
                               .SetGroupName("Internet")
                               .AddConstructor<CappedCongestionOps>();
  return tid;
}

CappedCongestionOps::CappedCongestionOps(ns3::Ptr<ns3::TcpCongestionOps> inner,
                                         std::uint32_t max_cwnd_bytes)
    : inner_(std::move(inner)), max_cwnd_bytes_(max_cwnd_bytes) {}

CappedCongestionOps::CappedCongestionOps(const CappedCongestionOps& other)
    : ns3::TcpCongestionOps(other), inner_(other.inner_->Fork()), max_cwnd_bytes_(other.max_cwnd_bytes_) {}

void CappedCongestionOps::clamp(const ns3::Ptr<ns3::TcpSocketState>& tcb) const {
  if (tcb->m_cWnd.Get() > max_cwnd_bytes_) tcb->m_cWnd = max_cwnd_bytes_;
}

std::string CappedCongestionOps::GetName() const { return inner_->GetName(); }

void CappedCongestionOps::Init(ns3::Ptr<ns3::TcpSocketState> tcb) { inner_->Init(tcb); }

std::uint32_t CappedCongestionOps::GetSsThresh(ns3::Ptr<const ns3::TcpSocketState> tcb,
                                               std::uint32_t bytes_in_flight) {
  return inner_->GetSsThresh(tcb, bytes_in_flight);
}

void CappedCongestionOps::IncreaseWindow(ns3::Ptr<ns3::TcpSocketState> tcb, std::uint32_t segments_acked) {
  inner_->IncreaseWindow(tcb, segments_acked);
  clamp(tcb);
}

void CappedCongestionOps::PktsAcked(ns3::Ptr<ns3::TcpSocketState> tcb, std::uint32_t segments_acked,
                                    const ns3::Time& rtt) {
  inner_->PktsAcked(tcb, segments_acked, rtt);
}

void CappedCongestionOps::CongestionStateSet(ns3::Ptr<ns3::TcpSocketState> tcb,
                                             const ns3::TcpSocketState::TcpCongState_t new_state) {
  inner_->CongestionStateSet(tcb, new_state);
}

void CappedCongestionOps::CwndEvent(ns3::Ptr<ns3::TcpSocketState> tcb,
                                    const ns3::TcpSocketState::TcpCAEvent_t event) {
  inner_->CwndEvent(tcb, event);
}

bool CappedCongestionOps::HasCongControl() const { return inner_->HasCongControl(); }

void CappedCongestionOps::CongControl(ns3::Ptr<ns3::TcpSocketState> tcb,
                                      const ns3::TcpRateOps::TcpRateConnection& rc,
                                      const ns3::TcpRateOps::TcpRateSample& rs) {
  inner_->CongControl(tcb, rc, rs);
  clamp(tcb);
}

ns3::Ptr<ns3::TcpCongestionOps> CappedCongestionOps::Fork() {
  return ns3::CopyObject<CappedCongestionOps>(this);
}

}  // namespace moss::net
