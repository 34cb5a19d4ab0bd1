// Fitting BG/NBD by maximum likelihood (declared in bgnbd.hpp).
#include <algorithm>
#include <cstdint>
#include <cmath>
#include <cstring>
#include <tuple>

#include "core/bgnbd.hpp"
#include "core/error.hpp"
#include "core/interrupt.hpp"
#include "core/repeat_buying.hpp"

namespace lifecycle::bgnbd {
namespace {

bool same_customer(const Customer& l, const Customer& r) {
    return l.x == r.x && l.t_x == r.t_x && l.T == r.T;
}

std::uint64_t bits(double v) {
    std::uint64_t u;
    std::memcpy(&u, &v, sizeof u);
    return u;
}

// A multiply-xorshift mix of the three keys' bits (the low bits pick the slot).
std::size_t hash(const Customer& c) {
    std::uint64_t h = bits(c.x) * 0x9e3779b97f4a7c15ull;
    h = (h ^ (h >> 29) ^ bits(c.t_x)) * 0xbf58476d1ce4e5b9ull;
    h = (h ^ (h >> 31) ^ bits(c.T)) * 0x94d049bb133111ebull;
    return static_cast<std::size_t>(h ^ (h >> 32));
}

constexpr std::uint32_t kNoTime = 0xffffffffu;

// A type rather than a function, so that std::sort inlines the comparison.
struct Before {
    bool operator()(const Row& l, const Row& r) const {
        return std::tie(l.customer.x, l.customer.t_x, l.customer.T) <
               std::tie(r.customer.x, r.customer.t_x, r.customer.T);
    }
};

}  // namespace

// Identical customers are found by hashing rather than by sorting all the rows: a million
// customers often have only a few hundred thousand distinct (x, t_x, T), and only those
// are sorted. The hash table holds the merged rows (open addressing, linear probing, at
// most 3/4 full: fresh memory is slow to come by; a weight of 0 marks an empty slot).
// Times are stored plus 0.0, which turns −0 into +0, so that equal numbers hash alike.
Merger::Merger() : table_(1024), mask_(table_.size() - 1) {}

void Merger::add(const Customer& customer, double weight) {
    check_interrupts_every(added_++);
    validate(customer);
    if (!(std::isfinite(weight) && weight >= 0.0))
        throw_invalid("argument \"weight\" must be a finite number >= 0");
    if (weight == 0.0) return;
    pending_[pending_count_++] = {{customer.x + 0.0, customer.t_x + 0.0, customer.T + 0.0}, weight};
    if (pending_count_ == kPending) flush();
}

// The pending rows' slots are fetched from memory together (the table is larger than the
// caches, and one row at a time would wait for each miss in turn), then merged in order.
void Merger::flush() {
    if ((distinct_ + pending_count_) * 4 > table_.size() * 3) grow();
    std::size_t start[kPending];
    for (std::size_t i = 0; i < pending_count_; ++i) {
        start[i] = hash(pending_[i].customer) & mask_;
        __builtin_prefetch(&table_[start[i]]);
    }
    for (std::size_t i = 0; i < pending_count_; ++i) insert(pending_[i], start[i]);
    pending_count_ = 0;
}

void Merger::insert(const Row& row, std::size_t slot) {
    for (;; slot = (slot + 1) & mask_) {
        Row& s = table_[slot];
        if (s.weight == 0.0) {
            s = row;
            break;
        }
        if (same_customer(s.customer, row.customer)) {
            s.weight += row.weight;
            return;
        }
    }
    ++distinct_;
}

// Doubles the table (flush() grows it before a batch, so that the batch's slots stay put).
void Merger::grow() {
    std::vector<Row> old(table_.size() * 2);
    old.swap(table_);
    mask_ = table_.size() - 1;
    for (const Row& r : old) {
        if (r.weight == 0.0) continue;
        std::size_t k = hash(r.customer) & mask_;
        while (table_[k].weight != 0.0) k = (k + 1) & mask_;
        table_[k] = r;
    }
}

std::vector<Row> Merger::rows() {
    flush();
    check_interrupts();
    std::vector<Row> merged;
    merged.reserve(distinct_);
    for (const Row& r : table_)
        if (r.weight != 0.0) merged.push_back(r);
    *this = Merger();
    std::sort(merged.begin(), merged.end(), Before());
    check_interrupts();
    return merged;
}

std::vector<Row> compress(const std::vector<Row>& rows) {
    Merger merger;
    for (const Row& row : rows) merger.add(row.customer, row.weight);
    return merger.rows();
}

// The distinct times by an open-addressing table of their indices (at most half full).
PreparedRows prepare(const std::vector<Row>& rows) {
    PreparedRows prepared;
    prepared.rows.reserve(rows.size());
    std::size_t size = 1024;
    while (size < 4 * rows.size()) size *= 2;  // two times a row, half full at most
    std::vector<std::uint32_t> table(size, kNoTime);
    const std::size_t mask = size - 1;
    const auto index = [&](double time) {
        time += 0.0;
        const std::uint64_t h = bits(time) * 0x9e3779b97f4a7c15ull;
        std::size_t slot = static_cast<std::size_t>(h ^ (h >> 32)) & mask;
        for (;; slot = (slot + 1) & mask) {
            const std::uint32_t k = table[slot];
            if (k == kNoTime) {
                table[slot] = static_cast<std::uint32_t>(prepared.times.size());
                prepared.times.push_back(time);
                return table[slot];
            }
            if (prepared.times[k] == time) return k;
        }
    };
    std::uint64_t i = 0;
    for (const Row& row : rows) {
        check_interrupts_every(i++);
        prepared.rows.push_back({row.customer.x, row.weight, index(row.customer.t_x), index(row.customer.T)});
    }
    return prepared;
}

// The optimizer works on times rescaled so that the longest T is 10, which keeps α of
// order 1 whatever the time unit; r, a and b do not depend on the unit, and α scales with
// it. The log-likelihood is reported on the caller's data, in the caller's unit.
Fit fit(const std::vector<Row>& rows, const mle::FitOptions& options) {
    return fit_merged(compress(rows), options);
}

Fit fit_merged(const std::vector<Row>& data, const mle::FitOptions& options) {
    const repeat_buying::Totals t = repeat_buying::totals(data);
    repeat_buying::check_identifiable(t, "BG/NBD");
    const double scale = 10.0 / t.max_T;
    const PreparedRows prepared = prepare(data);
    const mle::LogLikelihood mean_log_likelihood = [&](const std::vector<double>& p,
                                                       std::vector<double>& gradient) {
        Gradient g;
        const double ll = log_likelihood(Params{p[0], p[1], p[2], p[3]}, prepared, scale, &g);
        for (std::size_t i = 0; i < g.size(); ++i) gradient[i] = g[i] / t.weight;
        return ll / t.weight;
    };
    const mle::Result m = mle::maximize(mean_log_likelihood, {1.0, 1.0, 1.0, 1.0}, options);
    Fit result;
    result.params = Params{m.params[0], m.params[1] / scale, m.params[2], m.params[3]};
    result.log_likelihood = log_likelihood(result.params, prepared, 1.0);
    result.evaluations = m.evaluations;
    result.converged = m.converged;
    return result;
}

}  // namespace lifecycle::bgnbd
