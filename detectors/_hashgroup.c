/* Group 64-bit keys with a hash table: a group id per row, in one pass.
 *
 * numpy can only group by sorting (np.unique, or a sort of key and row packed
 * together), ~25 ns a row with the scatter that follows. An open-addressing table
 * that stays in L2 cache does it in a few ns. Group ids come out in order of first
 * appearance; detectors/groupby.py renumbers them in key order. Each thread keeps its
 * own table between calls (cleared by a generation count, not memset), so the GIL is
 * released while hashing.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <stdlib.h>

typedef struct {
    uint64_t key;
    uint32_t id;
    uint32_t generation; /* the slot is in use when this equals the table's */
} Slot;

#define AHEAD 16 /* rows between a slot's prefetch and its use */

static _Thread_local Slot *table;
static _Thread_local size_t capacity; /* a power of two */
static _Thread_local uint32_t generation;
static _Thread_local size_t last_groups; /* the previous call's: how big to start */

static inline size_t slot_of(uint64_t key, int shift) {
    return (size_t)((key * 0x9E3779B97F4A7C15ull) >> shift); /* Fibonacci hashing */
}

static size_t power_of_two_above(size_t n) {
    size_t size = 1024;
    while (size < n)
        size *= 2;
    return size;
}

/* A clean table of `want` slots: a fresh generation of the current one when it is big
 * enough but not wastefully so (a sparse table misses the cache on every probe). */
static int reserve(size_t want) {
    if (want <= capacity && capacity <= 4 * want && generation < UINT32_MAX) {
        generation++;
        return 0;
    }
    Slot *fresh = calloc(want, sizeof(Slot));
    if (!fresh)
        return -1;
    free(table);
    table = fresh;
    capacity = want;
    generation = 1;
    return 0;
}

/* Grow to four times the size and re-insert the groups found so far. */
static int grow(const uint64_t *keys, const int64_t *first_row, uint32_t groups) {
    size_t want = capacity * 4;
    if (reserve(want))
        return -1;
    int shift = 64 - __builtin_ctzll(capacity);
    for (uint32_t g = 0; g < groups; g++) {
        uint64_t key = keys[first_row[g]];
        size_t at = slot_of(key, shift);
        while (table[at].generation == generation)
            at = (at + 1) & (capacity - 1);
        table[at] = (Slot){key, g, generation};
    }
    return 0;
}

PyDoc_STRVAR(hash_group_doc,
             "hash_group(keys, group_of, first_row) -> int\n\n"
             "``keys``: n uint64. Writes each row's group id (int64, first appearance\n"
             "order) to ``group_of`` (n) and each group's first row (int64) to\n"
             "``first_row`` (n, only the first <groups> used). Returns the group count.");

static PyObject *hash_group(PyObject *self, PyObject *args) {
    Py_buffer keys_buf, group_buf, first_buf;
    if (!PyArg_ParseTuple(args, "y*w*w*", &keys_buf, &group_buf, &first_buf))
        return NULL;
    PyObject *result = NULL;
    Py_ssize_t rows = keys_buf.len / 8;
    if (keys_buf.len % 8 || group_buf.len != rows * 8 || first_buf.len != rows * 8 ||
        rows > (Py_ssize_t)UINT32_MAX) {
        PyErr_SetString(PyExc_ValueError, "hash_group: keys, group_of and first_row must be "
                                          "n 8-byte items each (n < 2**32)");
        goto done;
    }
    /* start at twice the previous call's groups, at most twice the rows: at most half full */
    size_t want = power_of_two_above(2 * (last_groups < (size_t)rows ? last_groups : rows));
    if (reserve(want)) {
        PyErr_NoMemory();
        goto done;
    }
    const uint64_t *keys = keys_buf.buf;
    int64_t *group_of = group_buf.buf, *first_row = first_buf.buf;
    uint32_t groups = 0;
    int failed = 0;
    Py_BEGIN_ALLOW_THREADS
    int shift = 64 - __builtin_ctzll(capacity);
    size_t mask = capacity - 1;
    uint32_t gen = generation;
    for (Py_ssize_t r = 0; r < rows; r++) {
        uint64_t key = keys[r];
        size_t at = slot_of(key, shift);
        if (r + AHEAD < rows) /* the table is bigger than L1: fetch a later row's slot now */
            __builtin_prefetch(&table[slot_of(keys[r + AHEAD], shift)]);
        for (;;) {
            Slot *slot = &table[at];
            if (slot->generation != gen) {
                if (2 * (size_t)(groups + 1) > capacity) { /* over half full: grow, retry */
                    if (grow(keys, first_row, groups)) {
                        failed = 1;
                        break;
                    }
                    shift = 64 - __builtin_ctzll(capacity);
                    mask = capacity - 1;
                    gen = generation;
                    at = slot_of(key, shift);
                    continue;
                }
                slot->key = key;
                slot->id = groups;
                slot->generation = gen;
                first_row[groups] = r;
                group_of[r] = groups++;
                break;
            }
            if (slot->key == key) {
                group_of[r] = slot->id;
                break;
            }
            at = (at + 1) & mask;
        }
        if (failed)
            break;
    }
    Py_END_ALLOW_THREADS
    if (failed) {
        PyErr_NoMemory();
        goto done;
    }
    last_groups = groups;
    result = PyLong_FromUnsignedLong(groups);
done:
    PyBuffer_Release(&keys_buf);
    PyBuffer_Release(&group_buf);
    PyBuffer_Release(&first_buf);
    return result;
}

static PyMethodDef methods[] = {
    {"hash_group", hash_group, METH_VARARGS, hash_group_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_hashgroup", "Hash grouping of 64-bit keys.", -1, methods,
};

PyMODINIT_FUNC PyInit__hashgroup(void) { return PyModule_Create(&module); }
