#include "core/repeat_buying.hpp"

#include <algorithm>
#include <cstdint>
#include <string>

#include "core/error.hpp"
#include "core/interrupt.hpp"

namespace lifecycle::repeat_buying {

Totals totals(const std::vector<bgnbd::Row>& rows) {
    Totals t;
    std::uint64_t i = 0;
    for (const bgnbd::Row& row : rows) {
        check_interrupts_every(i++);
        t.weight += row.weight;
        if (row.customer.x > 0.0) t.repeat_weight += row.weight;
        t.max_T = std::max(t.max_T, row.customer.T);
    }
    return t;
}

void check_identifiable(const Totals& t, const char* model) {
    const std::string name(model);
    if (t.weight == 0.0) throw_invalid(name + " cannot be fitted without customers");
    if (t.weight < 2.0) throw_invalid(name + " cannot be fitted to a single customer");
    if (t.repeat_weight == 0.0)
        throw_invalid(name + " cannot be fitted when no customer made a repeat purchase "
                             "(every frequency is 0)");
    if (!(t.max_T > 0.0)) throw_invalid(name + " cannot be fitted when every T is 0");
}

}  // namespace lifecycle::repeat_buying
