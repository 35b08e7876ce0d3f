// Fuzzes the importer of the Python vault: the first byte picks the layer,
// 'T' the whole file (a Fernet token: internal::decode_legacy_vault), anything
// else the decrypted JSON (internal::parse_legacy_vault_json, whose password
// tokens are checked under the same key). The key is the public test
// fixture's (tests/legacy/fixtures/legacy-vault/master_key), so the seeds
// made from that fixture reach the deep paths.
#include <string_view>

#include "credentials/errors.h"
#include "fuzz/fuzz_support.h"
#include "legacy/fernet.h"
#include "legacy/legacy_vault.h"

using namespace credentials;

namespace {
const internal::FernetKey& key() {
  static const internal::FernetKey k =
      *internal::FernetKey::from_text("GFuSCI8ffLhYaTnFvpHmkhDTZv_83-wLRAlCfwWBtoo=");
  return k;
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const std::string_view rest = credentials::fuzz::as_text(data + 1, size - 1);
  try {
    if (data[0] == 'T') {
      (void)internal::decode_legacy_vault(rest, key());
    } else {
      (void)internal::parse_legacy_vault_json(rest, key());
    }
  } catch (const InvalidArgumentError&) {
  } catch (const DecryptionFailedError&) {
  }
  return 0;
}
