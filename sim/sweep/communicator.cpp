#include "moss/sweep/communicator.h"

#include <cstdlib>
#include <string>

namespace moss::sweep {

#ifdef MOSS_HAVE_MPI
std::unique_ptr<Communicator> make_mpi_communicator();  // mpi_communicator.cpp
#endif

namespace {

class SerialCommunicator final : public Communicator {
 public:
  int rank() const override { return 0; }
  int size() const override { return 1; }
  std::string name() const override { return "serial"; }
  std::vector<std::string> gather(const std::string& local) override { return {local}; }
  void barrier() override {}
  void abort(int) override {}
};

bool env_positive(const char* name, int above) {
  const char* v = std::getenv(name);
  return v && std::atoi(v) > above;
}

}  // namespace

std::unique_ptr<Communicator> make_serial_communicator() { return std::make_unique<SerialCommunicator>(); }

bool built_with_mpi() {
#ifdef MOSS_HAVE_MPI
  return true;
#else
  return false;
#endif
}

bool launched_by_mpi() {
  return env_positive("OMPI_COMM_WORLD_SIZE", 0) || std::getenv("PMIX_RANK") != nullptr ||
         env_positive("PMI_SIZE", 0) || env_positive("SLURM_STEP_NUM_TASKS", 1);
}

std::unique_ptr<Communicator> make_world_communicator() {
#ifdef MOSS_HAVE_MPI
  if (launched_by_mpi()) return make_mpi_communicator();
#endif
  return make_serial_communicator();
}

}  // namespace moss::sweep
