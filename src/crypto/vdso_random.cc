#include "crypto/vdso_random.h"

#include <dlfcn.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>

namespace credentials::internal {
namespace {

// include/uapi/linux/random.h (Linux 6.11); not in Debian 12's headers.
struct OpaqueParams {
  std::uint32_t size_of_opaque_state;
  std::uint32_t mmap_prot;
  std::uint32_t mmap_flags;
  std::uint32_t reserved[13];
};
using VdsoGetrandom = ssize_t (*)(void* buffer, std::size_t length, unsigned int flags, void* state,
                                  std::size_t state_size);

struct Vdso {
  VdsoGetrandom getrandom = nullptr;
  OpaqueParams params{};
};

const Vdso& vdso() {
  static const Vdso found = [] {
    Vdso v;
    // glibc lists the vDSO among the loaded objects under this name; no
    // ELF parsing of our own.
    void* handle = ::dlopen("linux-vdso.so.1", RTLD_NOW | RTLD_NOLOAD);
    if (handle == nullptr) return v;
    auto function = reinterpret_cast<VdsoGetrandom>(::dlsym(handle, "__vdso_getrandom"));
    // A null buffer with this state size asks for the state's size and how
    // to map it.
    if (function == nullptr || function(nullptr, 0, 0, &v.params, ~std::size_t{0}) != 0 ||
        v.params.size_of_opaque_state == 0) {
      return v;
    }
    v.getrandom = function;
    return v;
  }();
  return found;
}

// The vDSO's state must not be shared between threads: one per thread,
// mapped as the kernel asks (MAP_DROPPABLE: wiped in a fork's child, never
// in a core dump, dropped under memory pressure; a wiped state is reseeded).
struct ThreadState {
  void* state = nullptr;
  std::size_t mapped = 0;
  bool unavailable = false;
  ThreadState() = default;
  ThreadState(const ThreadState&) = delete;
  ThreadState& operator=(const ThreadState&) = delete;
  ~ThreadState() {
    if (state != nullptr) ::munmap(state, mapped);
    // A later thread-exit destructor that draws gets getrandom(2).
    state = nullptr;
    unavailable = true;
  }
};
thread_local ThreadState thread_state;

}  // namespace

bool vdso_random_available() noexcept { return vdso().getrandom != nullptr; }

bool vdso_random_fill(std::span<std::uint8_t> out) noexcept {
  const Vdso& v = vdso();
  if (v.getrandom == nullptr || thread_state.unavailable) return false;
  if (thread_state.state == nullptr) {
    const auto page = static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
    const std::size_t size = (v.params.size_of_opaque_state + page - 1) / page * page;
    void* state = ::mmap(nullptr, size, static_cast<int>(v.params.mmap_prot),
                         static_cast<int>(v.params.mmap_flags), -1, 0);
    if (state == MAP_FAILED) {
      thread_state.unavailable = true;
      return false;
    }
    thread_state.state = state;
    thread_state.mapped = size;
  }
  std::size_t done = 0;
  while (done < out.size()) {
    // Like the system call, but a failure comes back as -errno.
    const ssize_t n = v.getrandom(out.data() + done, out.size() - done, 0, thread_state.state,
                                  v.params.size_of_opaque_state);
    if (n == -EINTR) continue;
    if (n <= 0) return false;
    done += static_cast<std::size_t>(n);
  }
  return true;
}

}  // namespace credentials::internal
