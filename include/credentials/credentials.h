// The public API of the credentials library: include this one header.
#pragma once

#include "credentials/audit.h"
#include "credentials/credential.h"
#include "credentials/database.h"
#include "credentials/errors.h"
#include "credentials/maintenance.h"
#include "credentials/secret.h"
#include "credentials/skills.h"
#include "credentials/user_context.h"
#include "credentials/vault.h"
