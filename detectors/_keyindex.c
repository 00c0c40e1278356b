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
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

#define AHEAD 8 /* rows between a slot's prefetch and its use */

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
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t r = 0; r < rows; r++) {
        const uint64_t *key = queries + r * width;
        if (r + AHEAD < rows)
            __builtin_prefetch(&table[hash_key(queries + (r + AHEAD) * width, width, seed) & mask]);
        size_t at = hash_key(key, width, seed) & mask;
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
    for (Py_ssize_t s = 0; s < used && !duplicate; s++) {
        const uint64_t *key = stored + s * v.width;
        size_t at = hash_key(key, v.width, seed) & mask;
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

static PyMethodDef methods[] = {
    {"lookup", lookup, METH_VARARGS, lookup_doc},
    {"rebuild", rebuild, METH_VARARGS, rebuild_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_keyindex", "A persistent index of fixed-width keys.", -1, methods,
};

PyMODINIT_FUNC PyInit__keyindex(void) { return PyModule_Create(&module); }
