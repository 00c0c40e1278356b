/* A persistent index from fixed-width keys (rows of 64-bit words) to dense slots.
 *
 * The detection state keeps one row per host-hour and per pair in numpy columns; this
 * finds (or adds) the row of each key of a batch in one pass, a few ns a key, where a
 * Python dict costs ~150 ns and numpy can only sort. All state lives in numpy arrays
 * that Python owns (the table and the stored keys), so the index is rebuilt from the
 * keys after a checkpoint is loaded or rows are evicted, and nothing here is saved.
 * Open addressing with linear probing; the table holds slot + 1 (0 = empty) and is
 * kept at most half full by the caller. Keys are hashed with a per-index seed, so
 * flows chosen to collide cannot be crafted without knowing it.
 *
 * `merge_events` works on what the slots index: it folds a pair state's pending flows
 * into its event store in one pass, whatever the number of pairs.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

#define AHEAD 8 /* rows between a prefetch and its use */
#define RING 32 /* hashes kept for the rows ahead: at least 2 * AHEAD + 1 */

static inline uint64_t hash_key(const uint64_t *key, Py_ssize_t width, uint64_t seed) {
    uint64_t h = seed;
    for (Py_ssize_t i = 0; i < width; i++) {
        h = (h ^ key[i]) * 0x9E3779B97F4A7C15ull;
        h ^= h >> 31;
    }
    return h * 0xBF58476D1CE4E5B9ull;
}

/* Checked views of the four buffers; 0 on success, -1 with ValueError set. */
typedef struct {
    Py_buffer table, stored, queries, out;
    Py_ssize_t width, capacity, stored_rows, rows;
} Views;

static void release(Views *v) {
    PyBuffer_Release(&v->table);
    PyBuffer_Release(&v->stored);
    PyBuffer_Release(&v->queries);
    PyBuffer_Release(&v->out);
}

static int check_table(Py_buffer *table, Py_ssize_t *capacity) {
    *capacity = table->len / 4;
    if (table->len % 4 || *capacity < 2 || (*capacity & (*capacity - 1))) {
        PyErr_SetString(PyExc_ValueError, "keyindex: the table must be int32 of a power-of-two "
                                          "length");
        return -1;
    }
    return 0;
}

PyDoc_STRVAR(lookup_doc,
             "lookup(table, stored, used, width, seed, queries, out, insert) -> int\n\n"
             "``stored``: the index's keys, rows of ``width`` uint64 (the first ``used`` in\n"
             "use); ``queries``: n such rows. Writes each query's slot (int32) to ``out``;\n"
             "unknown keys are appended to ``stored`` at ``used``, ``used + 1``, ... when\n"
             "``insert`` is true, else their slot is -1. Returns\n"
             "the new ``used``. The caller keeps the table at least twice ``used + n``\n"
             "and ``stored`` at least ``used + n`` rows (``used`` for a find); a call that\n"
             "would break either\n"
             "raises ValueError before touching anything.");

static PyObject *lookup(PyObject *self, PyObject *args) {
    Views v = {0};
    Py_ssize_t used;
    unsigned long long seed;
    int insert;
    if (!PyArg_ParseTuple(args, "w*w*nnKy*w*p", &v.table, &v.stored, &used, &v.width, &seed,
                          &v.queries, &v.out, &insert))
        return NULL;
    PyObject *result = NULL;
    if (check_table(&v.table, &v.capacity))
        goto done;
    if (v.width < 1 || v.stored.len % (8 * v.width) || v.queries.len % (8 * v.width)) {
        PyErr_SetString(PyExc_ValueError, "keyindex: keys must be rows of width uint64");
        goto done;
    }
    v.stored_rows = v.stored.len / (8 * v.width);
    v.rows = v.queries.len / (8 * v.width);
    Py_ssize_t room = insert ? v.rows : 0; /* a find adds nothing */
    if (v.out.len != 4 * v.rows || used < 0 || used + room > v.stored_rows ||
        2 * (used + room) > v.capacity || used + room > INT32_MAX) {
        PyErr_SetString(PyExc_ValueError, "keyindex: out must hold n int32; stored needs "
                                          "used + n rows and the table twice that");
        goto done;
    }
    int32_t *table = v.table.buf, *out = v.out.buf;
    uint64_t *stored = v.stored.buf;
    const uint64_t *queries = v.queries.buf;
    Py_ssize_t width = v.width, rows = v.rows;
    size_t mask = (size_t)v.capacity - 1;
    int32_t bad = 0;
    uint64_t hashes[RING]; /* rows r .. r + 2 * AHEAD */
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t r = 0; r < rows && r < 2 * AHEAD; r++) {
        hashes[r] = hash_key(queries + r * width, width, seed);
        __builtin_prefetch(&table[hashes[r] & mask]);
    }
    for (Py_ssize_t r = 0; r < rows; r++) {
        const uint64_t *key = queries + r * width;
        /* two misses a key, both fetched ahead: its table entry, then its stored key */
        Py_ssize_t far = r + 2 * AHEAD, near = r + AHEAD;
        if (far < rows) {
            hashes[far % RING] = hash_key(queries + far * width, width, seed);
            __builtin_prefetch(&table[hashes[far % RING] & mask]);
        }
        if (near < rows) {
            int32_t held = table[hashes[near % RING] & mask];
            if (held > 0 && held <= used)
                __builtin_prefetch(stored + (Py_ssize_t)(held - 1) * width);
        }
        size_t at = hashes[r % RING] & mask;
        for (;;) {
            int32_t held = table[at];
            if (held == 0 && !insert) {
                out[r] = -1;
                break;
            }
            if (held == 0) {
                memcpy(stored + used * width, key, 8 * width);
                table[at] = (int32_t)(used + 1);
                out[r] = (int32_t)used++;
                break;
            }
            if (held < 0 || held > used) { /* a corrupt table: never read past stored */
                bad = 1;
                break;
            }
            if (memcmp(stored + (Py_ssize_t)(held - 1) * width, key, 8 * width) == 0) {
                out[r] = held - 1;
                break;
            }
            at = (at + 1) & mask;
        }
        if (bad)
            break;
    }
    Py_END_ALLOW_THREADS
    if (bad) {
        PyErr_SetString(PyExc_ValueError, "keyindex: the table points past the stored keys");
        goto done;
    }
    result = PyLong_FromSsize_t(used);
done:
    release(&v);
    return result;
}

PyDoc_STRVAR(rebuild_doc,
             "rebuild(table, stored, used, width, seed) -> None\n\n"
             "Clears ``table`` and indexes rows 0 .. used-1 of ``stored`` (which must be\n"
             "distinct keys), after rows were evicted or loaded from a checkpoint.");

static PyObject *rebuild(PyObject *self, PyObject *args) {
    Views v = {0};
    Py_ssize_t used;
    unsigned long long seed;
    if (!PyArg_ParseTuple(args, "w*y*nnK", &v.table, &v.stored, &used, &v.width, &seed))
        return NULL;
    PyObject *result = NULL;
    if (check_table(&v.table, &v.capacity))
        goto done;
    if (v.width < 1 || v.stored.len % (8 * v.width) || used < 0 ||
        used > v.stored.len / (8 * v.width) || 2 * used > v.capacity || used > INT32_MAX) {
        PyErr_SetString(PyExc_ValueError, "keyindex: stored must hold used rows of width "
                                          "uint64 and the table twice that");
        goto done;
    }
    int32_t *table = v.table.buf;
    const uint64_t *stored = v.stored.buf;
    size_t mask = (size_t)v.capacity - 1;
    int duplicate = 0;
    Py_BEGIN_ALLOW_THREADS
    memset(table, 0, v.table.len);
    uint64_t hashes[RING];
    for (Py_ssize_t s = 0; s < used && s < AHEAD; s++)
        hashes[s] = hash_key(stored + s * v.width, v.width, seed);
    for (Py_ssize_t s = 0; s < used && !duplicate; s++) {
        const uint64_t *key = stored + s * v.width;
        if (s + AHEAD < used) { /* the table is bigger than the cache: fetch ahead */
            Py_ssize_t ahead = s + AHEAD;
            hashes[ahead % RING] = hash_key(stored + ahead * v.width, v.width, seed);
            __builtin_prefetch(&table[hashes[ahead % RING] & mask], 1);
        }
        size_t at = hashes[s % RING] & mask;
        while (table[at] != 0) {
            if (memcmp(stored + (Py_ssize_t)(table[at] - 1) * v.width, key, 8 * v.width) == 0) {
                duplicate = 1;
                break;
            }
            at = (at + 1) & mask;
        }
        if (!duplicate)
            table[at] = (int32_t)(s + 1);
    }
    Py_END_ALLOW_THREADS
    if (duplicate) {
        PyErr_SetString(PyExc_ValueError, "keyindex: stored keys are not distinct");
        goto done;
    }
    result = Py_None;
    Py_INCREF(result);
done:
    release(&v);
    return result;
}

/* ---- the pair state's event store: pending flows merged in, windows and caps applied ---- */

/* One retained flow, as detectors/pairstate.py's EVENT_DTYPE; kept in order of all four. */
typedef struct {
    uint32_t t, elapsed, bytes, packets;
} Event;

static inline int event_cmp(const Event *a, const Event *b) {
    uint64_t ha = (uint64_t)a->t << 32 | a->elapsed, hb = (uint64_t)b->t << 32 | b->elapsed;
    uint64_t la = (uint64_t)a->bytes << 32 | a->packets, lb = (uint64_t)b->bytes << 32 | b->packets;
    return ha != hb ? (ha < hb ? -1 : 1) : la != lb ? (la < lb ? -1 : 1) : 0;
}

static int event_qsort_cmp(const void *a, const void *b) { return event_cmp(a, b); }

/* How many events of a run in order are at or before `edge` (out of the window). */
static Py_ssize_t before_edge(const Event *run, Py_ssize_t n, int64_t edge) {
    Py_ssize_t lo = 0, hi = n;
    while (lo < hi) {
        Py_ssize_t mid = lo + (hi - lo) / 2;
        if (run[mid].t > edge)
            hi = mid;
        else
            lo = mid + 1;
    }
    return lo;
}

/* Where a slot's merged events go, in order: `skip` dropped (out of the window), `over`
 * to the capped output with their slot, the rest kept. */
typedef struct {
    int64_t skip, over;
    Event *out, *cout;
    int32_t *cslots, slot;
} Sink;

static inline void emit(Sink *k, const Event *from, int64_t n) {
    int64_t part = n < k->skip ? n : k->skip;
    k->skip -= part;
    from += part;
    n -= part;
    part = n < k->over ? n : k->over;
    memcpy(k->cout, from, part * sizeof(Event));
    for (int64_t j = 0; j < part; j++)
        k->cslots[j] = k->slot;
    k->cout += part;
    k->cslots += part;
    k->over -= part;
    memcpy(k->out, from + part, (n - part) * sizeof(Event));
    k->out += n - part;
}

/* One slot: its new events `a` (put in order here) merged with its old ones `b`. */
static void merge_slot(Event *a, Event *a_end, const Event *b, const Event *b_end,
                       int64_t window, int64_t cap, int64_t *kept, int64_t *newest, Sink *sink) {
    for (Event *e = a + 1; e < a_end; e++) /* streams bring them in order: check first */
        if (event_cmp(e - 1, e) > 0) {
            qsort(a, a_end - a, sizeof(Event), event_qsort_cmp);
            break;
        }
    int64_t last = a < a_end ? a_end[-1].t : 0;
    if (b < b_end && b_end[-1].t > last)
        last = b_end[-1].t;
    int64_t edge = last - window;
    sink->skip = before_edge(a, a_end - a, edge) + before_edge(b, b_end - b, edge);
    int64_t inside = (a_end - a) + (b_end - b) - sink->skip;
    *kept = inside < cap ? inside : cap;
    *newest = last;
    sink->over = inside - *kept;
    if (a == a_end || b == b_end || event_cmp(b_end - 1, a) <= 0) { /* one after the other */
        emit(sink, b, b_end - b);
        emit(sink, a, a_end - a);
    } else /* equal events are identical: which run goes first on a tie does not matter */
        while (a < a_end || b < b_end)
            emit(sink, b == b_end || (a < a_end && event_cmp(a, b) < 0) ? a++ : b++, 1);
}

PyDoc_STRVAR(merge_events_doc,
             "merge_events(old, counts, slots, new, window, cap, kept, newest, out, capped_slots,"
             " capped) -> (int, int)\n\n"
             "Merges ``new`` (16-byte events, one int32 slot each in ``slots``) into ``old``\n"
             "(grouped by slot, ``counts`` int64 a slot, each slot's in order): per slot,\n"
             "events in order of (t, elapsed, bytes, packets); of those newer than its newest\n"
             "minus ``window``, the ``cap`` newest go to ``out`` (grouped by slot, how many\n"
             "in ``kept``) and the rest to ``capped``, their slots to ``capped_slots``; older\n"
             "ones are dropped. ``newest``: each slot's newest t (0 without events). ``out``,\n"
             "``capped`` and ``capped_slots`` hold len(old) + len(new) items; ``kept`` and\n"
             "``newest`` one int64 a slot. Returns how many went to ``out`` and ``capped``.");

static PyObject *merge_events(PyObject *self, PyObject *args) {
    Py_buffer old_buf = {0}, counts_buf = {0}, slots_buf = {0}, new_buf = {0}, kept_buf = {0},
              newest_buf = {0}, out_buf = {0}, cslots_buf = {0}, cout_buf = {0};
    long long window, cap;
    if (!PyArg_ParseTuple(args, "y*y*y*y*LLw*w*w*w*w*", &old_buf, &counts_buf, &slots_buf,
                          &new_buf, &window, &cap, &kept_buf, &newest_buf, &out_buf, &cslots_buf,
                          &cout_buf))
        return NULL;
    PyObject *result = NULL;
    Py_ssize_t *first = NULL;
    Event *grouped = NULL;
    Py_ssize_t n = counts_buf.len / 8, m = slots_buf.len / 4, held = 0;
    const int64_t *counts = counts_buf.buf;
    int bad = counts_buf.len % 8 || slots_buf.len % 4 || old_buf.len % 16 || cap < 0;
    for (Py_ssize_t i = 0; i < n && !bad; i++) {
        bad = counts[i] < 0;
        held += counts[i];
    }
    Py_ssize_t room = old_buf.len / 16 + m;
    if (bad || held != old_buf.len / 16 || new_buf.len != 16 * m || kept_buf.len != 8 * n ||
        newest_buf.len != 8 * n || out_buf.len != 16 * room || cout_buf.len != 16 * room ||
        cslots_buf.len != 4 * room) {
        PyErr_SetString(PyExc_ValueError, "merge_events: counts (int64) must add up to the old "
                                          "events, slots (int32) match the new ones, kept and "
                                          "newest hold a slot's int64, out, capped and "
                                          "capped_slots old + new items; cap >= 0");
        goto done;
    }
    const int32_t *slots = slots_buf.buf;
    for (Py_ssize_t r = 0; r < m; r++)
        if (slots[r] < 0 || slots[r] >= n) {
            PyErr_Format(PyExc_ValueError, "merge_events: slot %d outside the %zd slots",
                         slots[r], n);
            goto done;
        }
    first = PyMem_RawCalloc(n + 1, sizeof(Py_ssize_t));
    grouped = PyMem_RawMalloc(m ? m * sizeof(Event) : 1);
    if (!first || !grouped) {
        PyErr_NoMemory();
        goto done;
    }
    const Event *old = old_buf.buf, *fresh = new_buf.buf;
    int64_t *kept = kept_buf.buf, *newest = newest_buf.buf;
    Sink sink = {0, 0, out_buf.buf, cout_buf.buf, cslots_buf.buf, 0};
    Py_BEGIN_ALLOW_THREADS
    /* the new events grouped by slot (a counting sort, arrival order kept) */
    for (Py_ssize_t r = 0; r < m; r++)
        first[slots[r] + 1]++;
    for (Py_ssize_t i = 0; i < n; i++)
        first[i + 1] += first[i];
    for (Py_ssize_t r = 0; r < m; r++)
        grouped[first[slots[r]]++] = fresh[r];
    for (Py_ssize_t i = n; i > 0; i--) /* first[i] now ends slot i: shift back to starts */
        first[i] = first[i - 1];
    first[0] = 0;
    const Event *unchanged = old; /* old runs since here stay as they are: copied at once */
    for (Py_ssize_t i = 0, at = 0; i < n; at += counts[i++]) {
        const Event *b = old + at, *b_end = b + counts[i];
        if (first[i] == first[i + 1] && (b == b_end || (b->t > (int64_t)b_end[-1].t - window &&
                                                         counts[i] <= cap))) {
            kept[i] = counts[i]; /* no new events, none out of the window or over the cap */
            newest[i] = b == b_end ? 0 : b_end[-1].t;
            continue;
        }
        memcpy(sink.out, unchanged, (b - unchanged) * sizeof(Event));
        sink.out += b - unchanged;
        unchanged = b_end;
        sink.slot = (int32_t)i;
        merge_slot(grouped + first[i], grouped + first[i + 1], b, b_end, window, cap, kept + i,
                   newest + i, &sink);
    }
    memcpy(sink.out, unchanged, (old + held - unchanged) * sizeof(Event));
    sink.out += old + held - unchanged;
    Py_END_ALLOW_THREADS
    result = Py_BuildValue("nn", (Py_ssize_t)(sink.out - (Event *)out_buf.buf),
                           (Py_ssize_t)(sink.cout - (Event *)cout_buf.buf));
done:
    PyMem_RawFree(first);
    PyMem_RawFree(grouped);
    PyBuffer_Release(&old_buf);
    PyBuffer_Release(&counts_buf);
    PyBuffer_Release(&slots_buf);
    PyBuffer_Release(&new_buf);
    PyBuffer_Release(&kept_buf);
    PyBuffer_Release(&newest_buf);
    PyBuffer_Release(&out_buf);
    PyBuffer_Release(&cslots_buf);
    PyBuffer_Release(&cout_buf);
    return result;
}

static PyMethodDef methods[] = {
    {"lookup", lookup, METH_VARARGS, lookup_doc},
    {"rebuild", rebuild, METH_VARARGS, rebuild_doc},
    {"merge_events", merge_events, METH_VARARGS, merge_events_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_keyindex", "A persistent index of fixed-width keys.", -1, methods,
};

PyMODINIT_FUNC PyInit__keyindex(void) { return PyModule_Create(&module); }
