// Time zones that mean the same in every session. A zone a sender stores (a contact's)
// is read later by the worker, in a session of its own: `AT TIME ZONE z` reads z first
// as an abbreviation of the session's timezone_abbreviations, then as a zone name or a
// POSIX specification. So a value accepted in one session ('WST' with the Australia
// abbreviations) may mean nothing, or another offset, in the worker's.
//
// lifecycle._zone_name(zone): the tzdata spelling of `zone` when it is the name of a
// zone in pg_timezone_names, in any case; NULL otherwise (abbreviations, POSIX
// specifications such as 'UTC+3', offsets). Independent of every session setting. The
// names are enumerated once per backend (as pg_timezone_names does: every file of the
// tz database, those with leap seconds left out); a change of tzdata is seen by new
// sessions.
//
// lifecycle._usable_zone(zone): `zone` when PostgreSQL can load it as a zone now
// (pg_tzset: a name or a POSIX specification, never an abbreviation), NULL otherwise:
// what the scheduler checks a stored zone with before it computes with it, so that a
// zone gone from tzdata after an upgrade costs its customer only (docs/playbooks.md).
#include "pg/guard.hpp"

extern "C" {
#include "pgtime.h"
#include "utils/hsearch.h"
#include "utils/memutils.h"
}

namespace {

constexpr int kNameLength = TZ_STRLEN_MAX + 1;

struct ZoneEntry {
    char upper[kNameLength];      // the key: the name in upper case
    char canonical[kNameLength];  // as tzdata spells it
};

HTAB* zone_names = nullptr;

void upper_case(const char* name, char* out) {
    int i = 0;
    for (; name[i] != '\0' && i < kNameLength - 1; ++i)
        out[i] = static_cast<char>(pg_toupper(static_cast<unsigned char>(name[i])));
    out[i] = '\0';
}

// Fills zone_names from the tz database; on an ERROR nothing is kept, and the next
// call tries again.
HTAB* load_zone_names() {
    HASHCTL control;
    memset(&control, 0, sizeof control);
    control.keysize = kNameLength;
    control.entrysize = sizeof(ZoneEntry);
    control.hcxt = TopMemoryContext;
    HTAB* table = hash_create("lifecycle zone names", 1024, &control,
                              HASH_ELEM | HASH_STRINGS | HASH_CONTEXT);
    MemoryContext scratch =
        AllocSetContextCreate(CurrentMemoryContext, "lifecycle zone enumeration", ALLOCSET_DEFAULT_SIZES);
    MemoryContext caller = MemoryContextSwitchTo(scratch);
    pg_tzenum* zones = pg_tzenumerate_start();
    for (pg_tz* zone = pg_tzenumerate_next(zones); zone != nullptr; zone = pg_tzenumerate_next(zones)) {
        const char* name = pg_get_timezone_name(zone);
        if (name == nullptr || strlen(name) >= kNameLength) continue;
        char upper[kNameLength];
        upper_case(name, upper);
        bool found;
        auto* entry = static_cast<ZoneEntry*>(hash_search(table, upper, HASH_ENTER, &found));
        if (!found) strlcpy(entry->canonical, name, kNameLength);
    }
    pg_tzenumerate_end(zones);
    MemoryContextSwitchTo(caller);
    MemoryContextDelete(scratch);
    return table;
}

}  // namespace

LIFECYCLE_FUNCTION(lifecycle_zone_name) {
    const char* zone = text_to_cstring(PG_GETARG_TEXT_PP(0));
    if (strlen(zone) >= static_cast<size_t>(kNameLength)) PG_RETURN_NULL();
    if (zone_names == nullptr) zone_names = load_zone_names();
    char upper[kNameLength];
    upper_case(zone, upper);
    auto* entry = static_cast<ZoneEntry*>(hash_search(zone_names, upper, HASH_FIND, nullptr));
    if (entry == nullptr) PG_RETURN_NULL();
    PG_RETURN_TEXT_P(cstring_to_text(entry->canonical));
}

LIFECYCLE_FUNCTION(lifecycle_usable_zone) {
    text* zone = PG_GETARG_TEXT_PP(0);
    const char* name = text_to_cstring(zone);
    if (name[0] == '\0' || strlen(name) > TZ_STRLEN_MAX || pg_tzset(name) == nullptr) PG_RETURN_NULL();
    PG_RETURN_TEXT_P(zone);
}
