// Random bytes from the kernel's CSPRNG without a system call: the vDSO's
// getrandom (Linux 6.11 and later).
//
// Every audit event seals its JSON under a fresh AES-GCM nonce. Asked of
// getrandom(2), a nonce cost ~1.2 µs on this virtual machine, a tenth of
// what an audit event adds to a read; the vDSO answers the same call in
// ~50 ns. It is the kernel's own generator, run in the caller's address
// space over a per-thread state that the kernel wipes in a fork's child and
// reseeds when the virtual machine is cloned, so it keeps what a buffer of
// random bytes in our memory would lose: no two processes, and no two
// clones of a machine, ever draw the same nonces. glibc calls it from
// getrandom(3) since 2.41; Debian 12 has 2.36, so we find it ourselves.
#pragma once

#include <cstdint>
#include <span>

namespace credentials::internal {

// Fills `out` and returns true; false (nothing promised about `out`) when
// this kernel has no vDSO getrandom or this thread's state could not be
// made: the caller then asks getrandom(2).
bool vdso_random_fill(std::span<std::uint8_t> out) noexcept;

// Whether this process draws its random bytes from the vDSO.
[[nodiscard]] bool vdso_random_available() noexcept;

}  // namespace credentials::internal
