#pragma once

#include <memory>
#include <string>
#include <vector>

namespace moss::sweep {

/// The processes of a distributed sweep. Std types only: MPI stays inside mpi_communicator.cpp.
class Communicator {
 public:
  virtual ~Communicator() = default;
  [[nodiscard]] virtual int rank() const = 0;
  [[nodiscard]] virtual int size() const = 0;
  /// "serial" or "mpi".
  [[nodiscard]] virtual std::string name() const = 0;
  /// Collective: every rank passes its text; rank 0 gets all texts in rank order, others nothing.
  [[nodiscard]] virtual std::vector<std::string> gather(const std::string& local) = 0;
  /// Collective barrier.
  virtual void barrier() = 0;
  /// Ends every rank with `code` after a failure on this one (MPI_Abort); no-op when serial.
  virtual void abort(int code) = 0;
};

/// One process, no MPI.
[[nodiscard]] std::unique_ptr<Communicator> make_serial_communicator();

/// True when this build has MPI support (MOSS_WITH_MPI and OpenMPI found).
[[nodiscard]] bool built_with_mpi();

/// True when the environment says mpirun or srun started this process (OMPI_COMM_WORLD_SIZE,
/// PMIX_RANK, PMI_SIZE or SLURM_STEP_NUM_TASKS > 1).
[[nodiscard]] bool launched_by_mpi();

/// The MPI world when built with MPI and launched by mpirun/srun (MPI is initialised here and
/// finalised when the communicator is destroyed); a serial communicator otherwise.
[[nodiscard]] std::unique_ptr<Communicator> make_world_communicator();

}  // namespace moss::sweep
