// Process-level protections that must be in place before any secret is read.
#pragma once

namespace credentials::cli {

// Makes this process unable to leak secrets through the file system:
//  - no core dump (RLIMIT_CORE 0, and PR_SET_DUMPABLE 0, which also keeps
//    other processes of the same user from ptrace-attaching to read memory);
//  - umask 077, so that nothing the process creates is readable by others.
// Failures are ignored: each is a hardening on top of the vault's own 0600
// files, and refusing to run on an unusual kernel would help no one.
void harden_process();

}  // namespace credentials::cli
