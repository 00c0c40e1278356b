/* Per-pair window sums and callback statistics, each in one pass over the window's flows.
 *
 * At every hour close the pair features re-read each changed pair's retained flows
 * (hundreds of thousands) to merge them into callbacks and take medians of their
 * intervals, durations and sizes. In numpy that is some twenty whole-array passes with
 * temporaries and a global sort per median; here each pair's flows are read once and
 * its few values (at most the pair's event cap) are ordered in a small scratch buffer.
 *
 * The results are bit for bit those of the numpy code they replace (the reference in
 * tests/detectors/test_pairfeatures.py), including its choices: a median is taken on
 * values capped at 2**39 and doubled to integers, as (lo + hi) / 4 of the doubled
 * middle pair, and a spread is the median of |value - median| with the uncapped value.
 *
 * `window` cuts each chosen pair's window out of the pair state's event store and sums it
 * in the same pass: numpy needed a dozen gathers, masks and scatter-adds over every
 * retained flow of the changed pairs at each hour close.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>

#define CAP 549755813888.0 /* 2**39: medians are taken on min(value, CAP) */
#define SHORT 16           /* runs up to this long are insertion-sorted */

/* The doubled, capped value a median orders (numpy: rint(minimum(v, 2**39) * 2)). */
static inline int64_t doubled(double v) { return (int64_t)rint((v < CAP ? v : CAP) * 2); }

static int cmp_int64(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static inline void swap(int64_t *a, int64_t *b) {
    int64_t t = *a;
    *a = *b;
    *b = t;
}

/* Moves the k-th smallest of v[0..n) to v[k], smaller ones before it, larger after. A
 * quickselect (median of three); after 2 * log2(n) rounds it sorts what is left, so a
 * crafted order of values costs O(n log n) at worst. */
static void select_kth(int64_t *v, Py_ssize_t n, Py_ssize_t k) {
    Py_ssize_t lo = 0, hi = n - 1, rounds = 0, limit = 2;
    for (Py_ssize_t m = n; m > 1; m >>= 1)
        limit += 2;
    while (hi - lo >= SHORT) {
        if (++rounds > limit) {
            qsort(v + lo, hi - lo + 1, sizeof(int64_t), cmp_int64);
            return;
        }
        Py_ssize_t mid = lo + (hi - lo) / 2;
        if (v[mid] < v[lo])
            swap(v + mid, v + lo);
        if (v[hi] < v[lo])
            swap(v + hi, v + lo);
        if (v[hi] < v[mid])
            swap(v + hi, v + mid);
        int64_t pivot = v[mid];
        Py_ssize_t i = lo, j = hi;
        while (i <= j) {
            while (v[i] < pivot)
                i++;
            while (v[j] > pivot)
                j--;
            if (i <= j)
                swap(v + i++, v + j--);
        }
        if (k <= j)
            hi = j;
        else if (k >= i)
            lo = i;
        else
            return; /* v[j+1..i) all equal the pivot, k among them */
    }
    for (Py_ssize_t i = lo + 1; i <= hi; i++) {
        int64_t x = v[i];
        Py_ssize_t j = i;
        for (; j > lo && v[j - 1] > x; j--)
            v[j] = v[j - 1];
        v[j] = x;
    }
}

/* The median of n >= 1 doubled values (reordered), as numpy's _median gives it. */
static double median(int64_t *v, Py_ssize_t n) {
    Py_ssize_t lo = (n - 1) / 2, hi = n / 2;
    select_kth(v, n, lo);
    int64_t upper = v[lo];
    if (hi != lo) {
        upper = v[hi];
        for (Py_ssize_t i = hi + 1; i < n; i++)
            upper = v[i] < upper ? v[i] : upper;
    }
    return (double)(v[lo] + upper) / 4;
}

/* One owner's callbacks, in scratch arrays of its flow count. */
typedef struct {
    int64_t *start, *end, *bytes, *values;
} Scratch;

typedef struct {
    int64_t *count, *longest;
    double *period, *rel_mad, *duration, *size, *size_rel_mad;
} Out;

typedef struct {
    long long gap, min_count;
    double min_period, max_rel_mad;
} Gate;

/* Merges flows [a, b) of one owner into callbacks and writes its six statistics. */
static void owner_stats(const int64_t *start, const int64_t *elapsed, const int64_t *octets,
                        Py_ssize_t a, Py_ssize_t b, const Gate *gate, Scratch *s, Out *out,
                        Py_ssize_t o) {
    Py_ssize_t k = 0;
    int64_t running = 0; /* latest end of the owner's flows so far */
    int64_t longest = 0; /* the longest callback's end - start */
    for (Py_ssize_t i = a; i < b; i++) {
        if (i == a || start[i] > running + gate->gap) {
            s->start[k] = start[i];
            s->bytes[k++] = 0;
        }
        int64_t end = start[i] + elapsed[i];
        running = i == a || end > running ? end : running;
        s->end[k - 1] = running;
        s->bytes[k - 1] = (int64_t)((uint64_t)s->bytes[k - 1] + (uint64_t)octets[i]);
        longest = running - s->start[k - 1] > longest ? running - s->start[k - 1] : longest;
    }
    out->count[o] = k;
    out->longest[o] = longest;
    if (k < 2 || k < gate->min_count)
        return;
    double period, spread;
    for (Py_ssize_t j = 0; j + 1 < k; j++)
        s->values[j] = doubled((double)(s->start[j + 1] - s->start[j]));
    period = median(s->values, k - 1);
    for (Py_ssize_t j = 0; j + 1 < k; j++)
        s->values[j] = doubled(fabs((double)(s->start[j + 1] - s->start[j]) - period));
    spread = median(s->values, k - 1);
    double rel_mad = period > 0 ? spread / period : INFINITY;
    out->period[o] = period;
    out->rel_mad[o] = rel_mad;
    if (!(period >= gate->min_period && rel_mad <= gate->max_rel_mad))
        return;
    for (Py_ssize_t j = 0; j < k; j++)
        s->values[j] = doubled((double)(s->end[j] - s->start[j]));
    out->duration[o] = median(s->values, k);
    for (Py_ssize_t j = 0; j < k; j++)
        s->values[j] = doubled((double)s->bytes[j]);
    double size = median(s->values, k);
    for (Py_ssize_t j = 0; j < k; j++)
        s->values[j] = doubled(fabs((double)s->bytes[j] - size));
    spread = median(s->values, k);
    out->size[o] = size;
    out->size_rel_mad[o] = size > 0 ? spread / size : 0.0;
}

/* True when the buffers [from, to) all hold `bytes` bytes. */
static int sized(const Py_buffer *bufs, int from, int to, Py_ssize_t bytes) {
    for (int i = from; i < to; i++)
        if (bufs[i].len != bytes)
            return 0;
    return 1;
}

PyDoc_STRVAR(callbacks_doc,
             "callbacks(segment, start, elapsed, octets, wanted, gap, min_count, min_period,"
             " max_rel_mad, count, longest, period, rel_mad, duration, size, size_rel_mad)\n\n"
             "Flows (int64 each: owner ``segment``, non-decreasing, in [0, n); ``start`` ms,\n"
             "non-decreasing within an owner; ``elapsed`` and ``octets`` >= 0) merged per owner\n"
             "into callbacks, for the owners whose byte of ``wanted`` (n bytes) is not 0 (the\n"
             "others' flows are skipped: they count 0 callbacks): a flow starting more than\n"
             "``gap`` ms after the latest end of its owner's earlier flows starts one.\n"
             "Writes, per owner (n = len(count)), ``count`` (int64) callbacks and the\n"
             "``longest`` (int64 ms, from a callback's start to its end; 0 without any); for\n"
             "owners with at least max(min_count, 1) and 2 callbacks the\n"
             "median interval between callback starts (``period``) and its MAD / median\n"
             "(``rel_mad``, inf for a median of 0); for those with period >= min_period and\n"
             "rel_mad <= max_rel_mad, the median callback duration, bytes and bytes' MAD /\n"
             "median (0 for a median of 0). The other statistics are NaN, rel_mad inf (NaN\n"
             "everywhere without flows). Raises ValueError on bad input.");

static PyObject *callbacks(PyObject *self, PyObject *args) {
    Py_buffer segment_buf = {0}, start_buf = {0}, elapsed_buf = {0}, octets_buf = {0};
    Py_buffer wanted_buf = {0}, out_bufs[7] = {{0}};
    Gate gate;
    if (!PyArg_ParseTuple(args, "y*y*y*y*y*LLddw*w*w*w*w*w*w*", &segment_buf, &start_buf,
                          &elapsed_buf, &octets_buf, &wanted_buf, &gate.gap, &gate.min_count,
                          &gate.min_period, &gate.max_rel_mad, &out_bufs[0], &out_bufs[1],
                          &out_bufs[2], &out_bufs[3], &out_bufs[4], &out_bufs[5], &out_bufs[6]))
        return NULL;
    PyObject *result = NULL;
    Scratch s = {0};
    Py_ssize_t m = segment_buf.len / 8, n = out_bufs[0].len / 8, longest = 0;
    int bad = segment_buf.len % 8 || start_buf.len != 8 * m || elapsed_buf.len != 8 * m ||
              octets_buf.len != 8 * m || out_bufs[0].len % 8 || wanted_buf.len != n;
    if (bad || !sized(out_bufs, 1, 7, 8 * n)) {
        PyErr_SetString(PyExc_ValueError, "callbacks: segment, start, elapsed and octets must be "
                                          "int64 of one length, the seven outputs 8-byte items, "
                                          "one an owner, and wanted one byte an owner");
        goto done;
    }
    const int64_t *segment = segment_buf.buf, *start = start_buf.buf;
    for (Py_ssize_t i = 0, a = 0; i < m; i++) {
        if (segment[i] < 0 || segment[i] >= n || (i && segment[i] < segment[i - 1])) {
            PyErr_Format(PyExc_ValueError, "callbacks: flow %zd: owner %lld is not in [0, %zd) "
                                           "and in order", i, (long long)segment[i], n);
            goto done;
        }
        if (i && segment[i] != segment[i - 1])
            a = i;
        else if (i && start[i] < start[i - 1]) {
            PyErr_Format(PyExc_ValueError, "callbacks: flow %zd starts before the one ahead of "
                                           "it in owner %lld", i, (long long)segment[i]);
            goto done;
        }
        longest = i + 1 - a > longest ? i + 1 - a : longest;
    }
    int64_t *pool = PyMem_RawMalloc(4 * (longest ? longest : 1) * sizeof(int64_t));
    if (!pool) {
        PyErr_NoMemory();
        goto done;
    }
    s = (Scratch){pool, pool + longest, pool + 2 * longest, pool + 3 * longest};
    Out out = {out_bufs[0].buf, out_bufs[1].buf, out_bufs[2].buf, out_bufs[3].buf,
               out_bufs[4].buf, out_bufs[5].buf, out_bufs[6].buf};
    const int64_t *elapsed = elapsed_buf.buf, *octets = octets_buf.buf;
    const char *wanted = wanted_buf.buf;
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t o = 0; o < n; o++) {
        out.count[o] = out.longest[o] = 0;
        out.period[o] = out.duration[o] = out.size[o] = out.size_rel_mad[o] = NAN;
        out.rel_mad[o] = m ? INFINITY : NAN;
    }
    for (Py_ssize_t a = 0, b; a < m; a = b) {
        for (b = a + 1; b < m && segment[b] == segment[a]; b++)
            ;
        if (wanted[segment[a]])
            owner_stats(start, elapsed, octets, a, b, &gate, &s, &out, segment[a]);
    }
    Py_END_ALLOW_THREADS
    result = Py_NewRef(Py_None);
done:
    PyMem_RawFree(s.start);
    PyBuffer_Release(&segment_buf);
    PyBuffer_Release(&start_buf);
    PyBuffer_Release(&elapsed_buf);
    PyBuffer_Release(&octets_buf);
    PyBuffer_Release(&wanted_buf);
    for (int i = 0; i < 7; i++)
        PyBuffer_Release(&out_bufs[i]);
    return result;
}

/* One retained flow, as detectors/pairstate.py's EVENT_DTYPE. */
typedef struct {
    uint32_t t, elapsed, bytes, packets;
} Event;

PyDoc_STRVAR(window_doc,
             "window(events, first, count, since, until, owner, start, elapsed, octets, packets,"
             " flows, bytes, packet_sum, busy, newest) -> rows\n\n"
             "The flows of n pairs inside (since, until] (times relative to the store's base),\n"
             "from a pair state's event store ``events`` (16-byte EVENT_DTYPE records, each\n"
             "pair's run sorted by time): pair i's run is ``count[i]`` records from\n"
             "``first[i]`` (int64 each). Writes the windowed flows, pair by pair in time order,\n"
             "to the int64 columns ``owner`` (index of the pair), ``start`` (relative),\n"
             "``elapsed``, ``octets`` and ``packets`` (room for every record of the runs), and\n"
             "per pair its ``flows``, ``bytes``, ``packet_sum``, ``busy`` (durations summed)\n"
             "and ``newest`` start (-1 without flows). Returns the rows written. Raises\n"
             "ValueError on bad input.");

static PyObject *window(PyObject *self, PyObject *args) {
    Py_buffer bufs[13] = {{0}};
    long long since, until;
    if (!PyArg_ParseTuple(args, "y*y*y*LLw*w*w*w*w*w*w*w*w*w*", &bufs[0], &bufs[1], &bufs[2],
                          &since, &until, &bufs[3], &bufs[4], &bufs[5], &bufs[6], &bufs[7],
                          &bufs[8], &bufs[9], &bufs[10], &bufs[11], &bufs[12]))
        return NULL;
    PyObject *result = NULL;
    Py_ssize_t records = bufs[0].len / (Py_ssize_t)sizeof(Event), n = bufs[1].len / 8;
    Py_ssize_t room = bufs[3].len / 8, need = 0;
    int bad = bufs[0].len % (Py_ssize_t)sizeof(Event) || bufs[1].len % 8 || bufs[2].len != 8 * n;
    if (bad || !sized(bufs, 4, 8, 8 * room) || !sized(bufs, 8, 13, 8 * n)) {
        PyErr_SetString(PyExc_ValueError, "window: events must be 16-byte records, first and "
                                          "count int64 of one length, the five row columns "
                                          "int64 of one length and the five sums one an owner");
        goto done;
    }
    const int64_t *first = bufs[1].buf, *count = bufs[2].buf;
    for (Py_ssize_t i = 0; i < n; i++) {
        if (first[i] < 0 || count[i] < 0 || first[i] > records - count[i]) {
            PyErr_Format(PyExc_ValueError, "window: pair %zd's run [%lld, +%lld) is outside the "
                                           "%zd records", i, (long long)first[i],
                         (long long)count[i], records);
            goto done;
        }
        need += count[i];
    }
    if (need > room) {
        PyErr_Format(PyExc_ValueError, "window: %zd records need room, the columns have %zd",
                     need, room);
        goto done;
    }
    const Event *events = bufs[0].buf;
    int64_t *owner = bufs[3].buf, *start = bufs[4].buf, *elapsed = bufs[5].buf;
    int64_t *octets = bufs[6].buf, *packets = bufs[7].buf, *flows = bufs[8].buf;
    int64_t *bytes = bufs[9].buf, *packet_sum = bufs[10].buf, *busy = bufs[11].buf;
    int64_t *newest = bufs[12].buf;
    Py_ssize_t rows = 0;
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t i = 0; i < n; i++) {
        int64_t f = 0, b = 0, p = 0, d = 0, last = -1;
        for (const Event *e = events + first[i], *end = e + count[i]; e < end; e++) {
            if (e->t <= since || e->t > until)
                continue;
            owner[rows] = i;
            start[rows] = last = e->t;
            elapsed[rows] = e->elapsed;
            octets[rows] = e->bytes;
            packets[rows++] = e->packets;
            f++, b += e->bytes, p += e->packets, d += e->elapsed;
        }
        flows[i] = f, bytes[i] = b, packet_sum[i] = p, busy[i] = d, newest[i] = last;
    }
    Py_END_ALLOW_THREADS
    result = PyLong_FromSsize_t(rows);
done:
    for (int i = 0; i < 13; i++)
        PyBuffer_Release(&bufs[i]);
    return result;
}

static PyMethodDef methods[] = {
    {"callbacks", callbacks, METH_VARARGS, callbacks_doc},
    {"window", window, METH_VARARGS, window_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_pairstats", "Per-pair window sums and callback statistics.", -1, methods,
};

PyMODINIT_FUNC PyInit__pairstats(void) { return PyModule_Create(&module); }
