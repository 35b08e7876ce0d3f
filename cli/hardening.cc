#include "hardening.h"

#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>

namespace credentials::cli {

void harden_process() {
  const rlimit no_core{0, 0};
  ::setrlimit(RLIMIT_CORE, &no_core);
#if !defined(__SANITIZE_ADDRESS__)
  // Not in ASan builds: LeakSanitizer's exit-time check ptraces the process,
  // which a non-dumpable process refuses to non-root users. RLIMIT_CORE 0
  // still prevents core files there.
  ::prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
#endif
  ::umask(077);
}

}  // namespace credentials::cli
