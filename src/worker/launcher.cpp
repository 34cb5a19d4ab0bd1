// Placeholder until the worker lands: registering nothing keeps the library loadable
// from shared_preload_libraries.
#include "worker/launcher.hpp"

namespace lifecycle::worker {

void register_launcher() {}

}  // namespace lifecycle::worker
