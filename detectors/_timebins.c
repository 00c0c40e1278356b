/* rwcount's seven load schemes, one flow at a time, with rwcount's own arithmetic.
 *
 * numpy shares flows among time bins by expanding each flow into one piece per bin
 * touched (np.repeat), then grouping the pieces: ~100 ns a flow in a dozen passes.
 * Here each flow is read once (from strided columns: a structured batch, or the records
 * of a SiLK file with their 32-bit counters, is not copied) and its shares are added
 * straight into the bins, as rwcount's startAdd ... minimumAdd do, with the same
 * expressions in the same order, so every bin holds the very double rwcount prints.
 * Two sinks: a dense window of bins (the common case), or a list of pieces (bin, row,
 * 3 values) for flows scattered over a huge span, which detectors/timebins.py sums per
 * key in piece order (np.bincount), giving the same doubles. The GIL is released while
 * adding.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

/* a*b+c fused into one rounding would not be rwcount's double */
#pragma GCC optimize("fp-contract=off")

enum { BIN_UNIFORM, START_SPIKE, END_SPIKE, MIDDLE_SPIKE, TIME_PROPORTIONAL, MAXIMUM, MINIMUM };

typedef struct {
    const char *at;
    Py_ssize_t stride;
    Py_ssize_t width; /* bytes and packets: 4 (as most SiLK formats store them) or 8 */
} Column;

typedef struct {
    Column start, elapsed, bytes, packets; /* int64, uint32, uint32 or uint64 (both) */
    Py_ssize_t rows;
    int64_t origin, size; /* bins are [origin + k * size, origin + (k + 1) * size) */
    int scheme;
} Flows;


typedef struct {
    /* dense: values[((group * nbins) + bin - lo) * 3 + k] */
    double *values;
    const int64_t *group; /* NULL: one group */
    int64_t lo, nbins;
    /* pieces: bin (relative to origin), row, 3 values each; `count` so far */
    int64_t *bins, *rows;
    Py_ssize_t count;
} Sink;

static inline int64_t floor_div(int64_t a, int64_t b) { /* b > 0 */
    int64_t q = a / b;
    return (a % b < 0) ? q - 1 : q;
}

static inline int64_t get_i64(Column c, Py_ssize_t r) {
    int64_t v;
    memcpy(&v, c.at + r * c.stride, 8);
    return v;
}

static inline uint64_t get_u64(Column c, Py_ssize_t r) {
    uint64_t v;
    memcpy(&v, c.at + r * c.stride, 8);
    return v;
}

static inline uint32_t get_u32(Column c, Py_ssize_t r) {
    uint32_t v;
    memcpy(&v, c.at + r * c.stride, 4);
    return v;
}

/* a counter: `narrow` (both counters 4 bytes wide) is a constant of each compiled loop */
static inline uint64_t get_count(Column c, Py_ssize_t r, const int narrow) {
    return narrow ? get_u32(c, r) : get_u64(c, r);
}

/* the time a spike scheme puts the whole flow at, relative to the origin */
static inline int64_t spike_time(const Flows *f, Py_ssize_t r) {
    int64_t s = get_i64(f->start, r) - f->origin;
    int64_t elapsed = get_u32(f->elapsed, r);
    switch (f->scheme) {
    case START_SPIKE:
        return s;
    case END_SPIKE:
        return s + elapsed;
    default: /* MIDDLE_SPIKE: C integer division, as rwcount's middleAdd */
        return s + elapsed / 2;
    }
}

static inline int is_spike(int scheme) {
    return scheme == START_SPIKE || scheme == END_SPIKE || scheme == MIDDLE_SPIKE;
}

/* The bin a time fell in last, and where that bin starts (bin * size). Flows come in
 * about time order, so a time mostly lies in the bin of the one before or in the next:
 * found with a subtraction, not a 64-bit division (the kernel 0.090 -> 0.079 CPU-s on
 * the 8 M flows of bench/bench_vs_silk.py, 30 s bins). */
typedef struct {
    int64_t bin, from;
} Guess;

static inline int64_t bin_of(Guess *g, int64_t t, int64_t size) {
    int64_t into;
    if (!__builtin_sub_overflow(t, g->from, &into) && into >= 0) {
        if (into < size)
            return g->bin;
        if (into - size < size) { /* the next bin: from + size <= t, so no overflow */
            g->from += size;
            return ++g->bin;
        }
    }
    g->bin = floor_div(t, size);
    /* wraps only for times near the int64 limits; the check above then fails safely */
    g->from = (int64_t)((uint64_t)g->bin * (uint64_t)size);
    return g->bin;
}

/* bins [first, last] a flow touches, relative to the origin (one bin for the spikes);
 * `g` guesses the bins of starts (g[0]) and of ends (g[1]) */
static inline void flow_bins(const Flows *f, Py_ssize_t r, Guess g[2], int64_t *first,
                             int64_t *last) {
    if (is_spike(f->scheme)) {
        *first = *last = bin_of(&g[0], spike_time(f, r), f->size);
        return;
    }
    int64_t s = get_i64(f->start, r) - f->origin;
    int64_t elapsed = get_u32(f->elapsed, r);
    *first = bin_of(&g[0], s, f->size);
    int64_t into_bin = (int64_t)((uint64_t)s - (uint64_t)g[0].from); /* 0 .. size - 1 */
    *last = elapsed < f->size - into_bin ? *first : bin_of(&g[1], s + elapsed, f->size);
}

/* inlined into each loop, so `dense`, `narrow` and `grouped` are decided at compile time
 * (27 -> 14 ns a flow for `dense`) */
#define INLINE static inline __attribute__((always_inline))

typedef struct {
    int dense, narrow, grouped; /* sink, both counters 4 bytes wide, sink->group set */
} Shape;

INLINE void put(Sink *sink, const Shape shape, Py_ssize_t row, int64_t bin, double flows,
                double bytes, double packets) {
    double *cell;
    if (shape.dense) {
        int64_t at = bin - sink->lo; /* add_flow checked the flow's bins are in the window */
        if (shape.grouped)
            at += sink->group[row] * sink->nbins;
        cell = sink->values + 3 * at;
    } else {
        sink->bins[sink->count] = bin;
        sink->rows[sink->count] = row;
        cell = sink->values + 3 * sink->count++;
        cell[0] = cell[1] = cell[2] = 0.0;
    }
    cell[0] += flows;
    cell[1] += bytes;
    cell[2] += packets;
}

/* One flow's shares, as rwcount.c adds them (the same expressions, evaluated alike).
 * Returns 0, or 1 without adding anything when a dense window does not hold its bins. */
INLINE int add_flow(const Flows *f, Py_ssize_t r, Guess g[2], Sink *sink, const Shape shape) {
    int64_t first, last;
    flow_bins(f, r, g, &first, &last);
    if (shape.dense && (first < sink->lo || last - sink->lo >= sink->nbins))
        return 1;
    double bytes = (double)get_count(f->bytes, r, shape.narrow);
    double packets = (double)get_count(f->packets, r, shape.narrow);
    if (first == last) { /* every scheme: the whole record in its one bin */
        put(sink, shape, r, first, 1.0, bytes, packets);
        return 0;
    }
    int64_t size = f->size;
    switch (f->scheme) {
    case BIN_UNIFORM: { /* meanAdd */
        double flows = 1.0 / ((double)(last - first) + 1.0);
        double b = bytes * flows, p = packets * flows;
        for (int64_t bin = first; bin <= last; bin++)
            put(sink, shape, r, bin, flows, b, p);
        return 0;
    }
    case TIME_PROPORTIONAL: { /* durationAdd: a whole bin's share, then the partial ends */
        int64_t s = get_i64(f->start, r) - f->origin;
        int64_t e = s + get_u32(f->elapsed, r);
        double flows = (double)size / (double)(1 + e - s);
        double b = bytes * flows, p = packets * flows;
        double ratio = ((double)first + 1.0 - ((double)s / (double)size));
        put(sink, shape, r, first, ratio * flows, ratio * b, ratio * p);
        ratio = (((double)(e + 1) / (double)size) - (double)last);
        put(sink, shape, r, last, ratio * flows, ratio * b, ratio * p);
        for (int64_t bin = first + 1; bin < last; bin++)
            put(sink, shape, r, bin, flows, b, p);
        return 0;
    }
    case MAXIMUM:
        for (int64_t bin = first; bin <= last; bin++)
            put(sink, shape, r, bin, 1.0, bytes, packets);
        return 0;
    default: /* MINIMUM: a record in every bin, the volume only when it fits in one */
        for (int64_t bin = first; bin <= last; bin++)
            put(sink, shape, r, bin, 1.0, 0.0, 0.0);
        return 0;
    }
}

/* Flows in order into a dense window, up to the first whose bins it does not hold; each
 * `shape` is a loop of its own */
INLINE Py_ssize_t add_dense(const Flows *f, Sink *sink, const Shape shape) {
    Guess g[2] = {{0}};
    Py_ssize_t added = 0;
    while (added < f->rows && !add_flow(f, added, g, sink, shape))
        added++;
    return added;
}

/* ---------------------------------------------------------------- argument plumbing */

typedef struct {
    Py_buffer views[4];
    int held;
} Views;

static void release(Views *v) {
    for (int i = 0; i < v->held; i++)
        PyBuffer_Release(&v->views[i]);
    v->held = 0;
}

/* The four columns as strided 1-D buffers of the expected item sizes, equally long: the
 * counters may be 4 bytes wide, so the records of a SiLK file can be read in place. */
static int get_flows(PyObject *start, PyObject *elapsed, PyObject *bytes, PyObject *packets,
                     long long origin, long long size, int scheme, Flows *f, Views *v) {
    PyObject *objects[4] = {start, elapsed, bytes, packets};
    static const Py_ssize_t itemsizes[4] = {8, 4, 8, 8};
    Column *columns[4] = {&f->start, &f->elapsed, &f->bytes, &f->packets};
    v->held = 0;
    for (int i = 0; i < 4; i++) {
        Py_buffer *view = &v->views[i];
        if (PyObject_GetBuffer(objects[i], view, PyBUF_STRIDED_RO) < 0) {
            release(v);
            return -1;
        }
        v->held++;
        int narrow_counter = i >= 2 && view->itemsize == 4;
        if (view->ndim != 1 || (view->itemsize != itemsizes[i] && !narrow_counter) ||
            view->shape[0] != v->views[0].shape[0] ||
            (i == 3 && view->itemsize != v->views[2].itemsize)) {
            release(v);
            PyErr_SetString(PyExc_ValueError,
                            "timebins: start (int64), elapsed (uint32), bytes and packets "
                            "(both uint32 or both uint64) must be 1-D columns of one length");
            return -1;
        }
        columns[i]->at = view->buf;
        columns[i]->stride = view->strides[0];
        columns[i]->width = view->itemsize;
    }
    if (size <= 0 || scheme < 0 || scheme > MINIMUM) {
        release(v);
        PyErr_SetString(PyExc_ValueError, "timebins: bin size must be positive, scheme 0-6");
        return -1;
    }
    f->rows = v->views[0].shape[0];
    f->origin = origin;
    f->size = size;
    f->scheme = scheme;
    return 0;
}

/* Every function takes the columns, origin, bin size and scheme first: the first seven
 * arguments; `rest` (may be NULL) gets a new reference to the tuple of the others. */
static int parse_flows(PyObject *args, Flows *f, Views *v, PyObject **rest) {
    PyObject *start, *elapsed, *bytes, *packets;
    long long origin, size;
    int scheme;
    PyObject *head = PyTuple_GetSlice(args, 0, 7);
    if (!head)
        return -1;
    int parsed = PyArg_ParseTuple(head, "OOOOLLi", &start, &elapsed, &bytes, &packets, &origin,
                                  &size, &scheme);
    Py_DECREF(head); /* the objects stay referenced by `args` */
    if (!parsed || get_flows(start, elapsed, bytes, packets, origin, size, scheme, f, v))
        return -1;
    if (rest && !(*rest = PyTuple_GetSlice(args, 7, PyTuple_GET_SIZE(args)))) {
        release(v);
        return -1;
    }
    return 0;
}

PyDoc_STRVAR(span_doc, "span(start, elapsed, bytes, packets, origin, size, scheme)\n"
                       "-> (first bin, last bin)\n\n"
                       "The bins the flows touch, relative to ``origin`` (no flows: (0, -1)).");

static PyObject *span(PyObject *self, PyObject *args) {
    Flows f;
    Views v;
    if (parse_flows(args, &f, &v, NULL))
        return NULL;
    int64_t low = INT64_MAX, high = INT64_MIN; /* earliest and latest time, two divisions */
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t r = 0; r < f.rows; r++) {
        int64_t from, to;
        if (is_spike(f.scheme)) {
            from = to = spike_time(&f, r);
        } else {
            from = get_i64(f.start, r) - f.origin;
            to = from + get_u32(f.elapsed, r);
        }
        low = from < low ? from : low;
        high = to > high ? to : high;
    }
    Py_END_ALLOW_THREADS
    release(&v);
    if (!f.rows)
        return Py_BuildValue("LL", 0LL, -1LL);
    return Py_BuildValue("LL", (long long)floor_div(low, f.size),
                         (long long)floor_div(high, f.size));
}

static uint64_t count_pieces(const Flows *f) {
    uint64_t pieces = 0;
    Guess g[2] = {{0}};
    for (Py_ssize_t r = 0; r < f->rows; r++) {
        int64_t first, last;
        flow_bins(f, r, g, &first, &last);
        pieces += (uint64_t)(last - first) + 1;
    }
    return pieces;
}

PyDoc_STRVAR(pieces_count_doc, "pieces_count(start, elapsed, bytes, packets, origin, size, "
                               "scheme) -> int\n\n"
                               "How many (flow, bin) pieces the flows make.");

static PyObject *pieces_count(PyObject *self, PyObject *args) {
    Flows f;
    Views v;
    if (parse_flows(args, &f, &v, NULL))
        return NULL;
    uint64_t pieces;
    Py_BEGIN_ALLOW_THREADS
    pieces = count_pieces(&f);
    Py_END_ALLOW_THREADS
    release(&v);
    return PyLong_FromUnsignedLongLong(pieces);
}

PyDoc_STRVAR(accumulate_doc,
             "accumulate(start, elapsed, bytes, packets, origin, size, scheme, group, lo, "
             "nbins, out) -> int\n\n"
             "Add the flows' shares, in order, into ``out``: float64 [groups][nbins][3]\n"
             "(records, bytes, packets) for bins ``lo`` .. ``lo + nbins - 1``, up to the\n"
             "first flow with a bin outside them; returns how many flows were added.\n"
             "``group``: a group number per flow (int64, 0 .. groups - 1), or None.");

static PyObject *accumulate(PyObject *self, PyObject *args) {
    PyObject *group, *rest;
    long long lo, nbins;
    Py_buffer out;
    Flows f;
    Views v;
    if (parse_flows(args, &f, &v, &rest))
        return NULL;
    int parsed = PyArg_ParseTuple(rest, "OLLw*", &group, &lo, &nbins, &out);
    Py_DECREF(rest);
    if (!parsed) {
        release(&v);
        return NULL;
    }
    Py_buffer group_view = {0};
    PyObject *result = NULL;
    Py_ssize_t cells = out.len / (3 * (Py_ssize_t)sizeof(double));
    Py_ssize_t groups = nbins > 0 ? cells / nbins : 0;
    if (nbins <= 0 || out.len != groups * nbins * 3 * (Py_ssize_t)sizeof(double)) {
        PyErr_SetString(PyExc_ValueError, "accumulate: out must hold groups * nbins * 3 doubles");
        goto done;
    }
    Sink sink = {.values = out.buf, .lo = lo, .nbins = nbins};
    if (group != Py_None) {
        if (PyObject_GetBuffer(group, &group_view, PyBUF_C_CONTIGUOUS) < 0)
            goto done;
        if (group_view.len != f.rows * 8) {
            PyErr_SetString(PyExc_ValueError, "accumulate: group must be one int64 per flow");
            goto done;
        }
        sink.group = group_view.buf;
        for (Py_ssize_t r = 0; r < f.rows; r++)
            if (sink.group[r] < 0 || sink.group[r] >= groups) {
                PyErr_SetString(PyExc_ValueError, "accumulate: a group number out of range");
                goto done;
            }
    } else if (groups != 1) {
        PyErr_SetString(PyExc_ValueError, "accumulate: out holds several groups, group is None");
        goto done;
    }
    Py_ssize_t added;
    int narrow = f.bytes.width == 4, grouped = sink.group != NULL;
    Py_BEGIN_ALLOW_THREADS
    if (narrow && grouped)
        added = add_dense(&f, &sink, (Shape){.dense = 1, .narrow = 1, .grouped = 1});
    else if (narrow)
        added = add_dense(&f, &sink, (Shape){.dense = 1, .narrow = 1});
    else if (grouped)
        added = add_dense(&f, &sink, (Shape){.dense = 1, .grouped = 1});
    else
        added = add_dense(&f, &sink, (Shape){.dense = 1});
    Py_END_ALLOW_THREADS
    result = PyLong_FromSsize_t(added);
done:
    if (group_view.obj)
        PyBuffer_Release(&group_view);
    PyBuffer_Release(&out);
    release(&v);
    return result;
}

PyDoc_STRVAR(pieces_doc,
             "pieces(start, elapsed, bytes, packets, origin, size, scheme, bins, rows, values)\n"
             "\n"
             "Write every (flow, bin) piece: its bin (int64, relative to ``origin``), its\n"
             "flow's row (int64) and its shares (3 float64), in flow order; ``bins`` and\n"
             "``rows`` hold exactly pieces_count() pieces.");

static PyObject *pieces(PyObject *self, PyObject *args) {
    PyObject *rest;
    Py_buffer bins, rows, values;
    Flows f;
    Views v;
    if (parse_flows(args, &f, &v, &rest))
        return NULL;
    int parsed = PyArg_ParseTuple(rest, "w*w*w*", &bins, &rows, &values);
    Py_DECREF(rest);
    if (!parsed) {
        release(&v);
        return NULL;
    }
    PyObject *result = NULL;
    Py_ssize_t capacity = bins.len / 8;
    if (bins.len % 8 || rows.len != bins.len || values.len != 3 * bins.len) {
        PyErr_SetString(PyExc_ValueError, "pieces: bins, rows (int64) and values (3 float64) "
                                          "must hold the same number of pieces");
        goto done;
    }
    uint64_t needed;
    Py_BEGIN_ALLOW_THREADS
    needed = count_pieces(&f);
    Py_END_ALLOW_THREADS
    if (needed != (uint64_t)capacity) {
        PyErr_SetString(PyExc_ValueError, "pieces: outputs must hold exactly pieces_count()");
        goto done;
    }
    Sink sink = {.values = values.buf, .bins = bins.buf, .rows = rows.buf};
    Guess g[2] = {{0}};
    const Shape shape = {.narrow = f.bytes.width == 4}; /* the per-flow branch: pieces are rare */
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t r = 0; r < f.rows; r++)
        add_flow(&f, r, g, &sink, shape);
    Py_END_ALLOW_THREADS
    result = Py_NewRef(Py_None);
done:
    release(&v);
    PyBuffer_Release(&bins);
    PyBuffer_Release(&rows);
    PyBuffer_Release(&values);
    return result;
}

static PyMethodDef methods[] = {
    {"span", span, METH_VARARGS, span_doc},
    {"pieces_count", pieces_count, METH_VARARGS, pieces_count_doc},
    {"accumulate", accumulate, METH_VARARGS, accumulate_doc},
    {"pieces", pieces, METH_VARARGS, pieces_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_timebins", "rwcount's load schemes, flow by flow.", -1, methods,
};

PyMODINIT_FUNC PyInit__timebins(void) { return PyModule_Create(&module); }
