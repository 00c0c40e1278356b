/* Move the fields of packed records into another record layout, in cache-sized blocks.
 *
 * numpy copies a structured array field by field: every field is a separate strided
 * pass over the whole batch, so a 14-field record is read and written 14 times and
 * costs ~30 ns. Here the records go in blocks that fit L1 cache: each block is filled
 * from a template, then every move runs over the block with its branches decided once.
 * What to move where is decided in Python (connectors/fieldmoves.py, which documents
 * the ops); this file only executes the plan, after checking every offset.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

typedef struct {
    uint16_t src, dst;
    uint8_t op, src_size, dst_size, mask;
    uint16_t when; /* source byte that must have a bit of `mask` set, or ALWAYS */
    uint16_t reserved;
} Move;

enum {
    OP_COPY = 0,   /* bytes verbatim */
    OP_INT = 1,    /* unsigned integer, widened; | SRC_BE, | DST_BE */
    OP_SRC_BE = 2,
    OP_DST_BE = 4,
    OP_MASKED = 8, /* one byte ANDed with mask; the unmasked bytes are ORed into `seen` */
    OP_TEST = 9,   /* one byte: 1 if it has a bit of mask set, else 0 */
};
#define ALWAYS 0xFFFF
#define BLOCK 128 /* records per block: source and target of a block stay in L1 cache */

#if PY_BIG_ENDIAN
#define HOST_BE 1
#else
#define HOST_BE 0
#endif

static inline uint64_t load_uint(const uint8_t *p, int size, int swap) {
    switch (size) {
    case 1:
        return p[0];
    case 2: {
        uint16_t v;
        memcpy(&v, p, 2);
        return swap ? __builtin_bswap16(v) : v;
    }
    case 4: {
        uint32_t v;
        memcpy(&v, p, 4);
        return swap ? __builtin_bswap32(v) : v;
    }
    default: {
        uint64_t v;
        memcpy(&v, p, 8);
        return swap ? __builtin_bswap64(v) : v;
    }
    }
}

static inline void store_uint(uint8_t *p, uint64_t value, int size, int swap) {
    switch (size) {
    case 1:
        p[0] = (uint8_t)value;
        return;
    case 2: {
        uint16_t v = (uint16_t)value;
        v = swap ? __builtin_bswap16(v) : v;
        memcpy(p, &v, 2);
        return;
    }
    case 4: {
        uint32_t v = (uint32_t)value;
        v = swap ? __builtin_bswap32(v) : v;
        memcpy(p, &v, 4);
        return;
    }
    default: {
        uint64_t v = swap ? __builtin_bswap64(value) : value;
        memcpy(p, &v, 8);
        return;
    }
    }
}

/* The loop every move runs over a block. Offsets and sizes are copied to locals first:
 * the stores go through byte pointers, which may alias the move itself, so the compiler
 * would otherwise reload them on every record. Conditional moves skip records whose
 * `when` byte lacks the mask's bits (they are rare, so the branch is predicted). */
#define MOVE_LOOP(STATEMENT)                                                               \
    do {                                                                                   \
        const uint8_t *sp = s + m_src;                                                     \
        uint8_t *dp = d + m_dst;                                                           \
        if (m_when == ALWAYS) {                                                            \
            for (Py_ssize_t r = 0; r < n; r++, sp += src_size, dp += dst_size) {           \
                STATEMENT;                                                                 \
            }                                                                              \
        } else {                                                                           \
            const uint8_t *wp = s + m_when;                                                \
            for (Py_ssize_t r = 0; r < n; r++, sp += src_size, dp += dst_size, wp += src_size) \
                if (*wp & m_mask) {                                                        \
                    STATEMENT;                                                             \
                }                                                                          \
        }                                                                                  \
    } while (0)

static void apply_move(const Move *m, const uint8_t *restrict s, Py_ssize_t src_size,
                       uint8_t *restrict d, Py_ssize_t dst_size, Py_ssize_t n, uint8_t *seen) {
    const Py_ssize_t m_src = m->src, m_dst = m->dst, m_when = m->when;
    const uint8_t m_mask = m->mask, op = m->op;
    const int ss = m->src_size, ds = m->dst_size;
    if (op == OP_COPY) {
        switch (ss) { /* constant sizes compile to single loads and stores */
        case 1: MOVE_LOOP(*dp = *sp); return;
        case 2: MOVE_LOOP(memcpy(dp, sp, 2)); return;
        case 4: MOVE_LOOP(memcpy(dp, sp, 4)); return;
        case 8: MOVE_LOOP(memcpy(dp, sp, 8)); return;
        case 16: MOVE_LOOP(memcpy(dp, sp, 16)); return;
        default: MOVE_LOOP(memcpy(dp, sp, (size_t)ss)); return;
        }
    }
    if (op == OP_MASKED) {
        uint8_t all = 0;
        MOVE_LOOP(all |= *sp; *dp = *sp & m_mask);
        *seen |= all;
        return;
    }
    if (op == OP_TEST) {
        MOVE_LOOP(*dp = (*sp & m_mask) != 0);
        return;
    }
    const int src_swap = ((op & OP_SRC_BE) != 0) != HOST_BE;
    const int dst_swap = ((op & OP_DST_BE) != 0) != HOST_BE;
    if (!src_swap && !dst_swap && ss == 2 && ds == 4) {
        MOVE_LOOP(uint16_t v; memcpy(&v, sp, 2); uint32_t w = v; memcpy(dp, &w, 4));
        return;
    }
    if (!src_swap && !dst_swap && ss == 4 && ds == 8) {
        MOVE_LOOP(uint32_t v; memcpy(&v, sp, 4); uint64_t w = v; memcpy(dp, &w, 8));
        return;
    }
    if (src_swap != dst_swap && ss == 4 && ds == 4) {
        MOVE_LOOP(uint32_t v; memcpy(&v, sp, 4); v = __builtin_bswap32(v); memcpy(dp, &v, 4));
        return;
    }
    MOVE_LOOP(store_uint(dp, load_uint(sp, ss, src_swap), ds, dst_swap));
}

static int is_int_size(int size) { return size == 1 || size == 2 || size == 4 || size == 8; }

static int check_moves(const Move *moves, Py_ssize_t count, Py_ssize_t src_size,
                       Py_ssize_t dst_size) {
    for (Py_ssize_t i = 0; i < count; i++) {
        const Move *m = &moves[i];
        int ok = m->src_size > 0 && m->src + m->src_size <= src_size &&
                 m->dst + m->dst_size <= dst_size && (m->when == ALWAYS || m->when < src_size);
        if (m->op == OP_COPY)
            ok = ok && m->src_size == m->dst_size;
        else if (m->op == OP_MASKED || m->op == OP_TEST)
            ok = ok && m->src_size == 1 && m->dst_size == 1 && m->when == ALWAYS;
        else if ((m->op & OP_INT) && m->op <= (OP_INT | OP_SRC_BE | OP_DST_BE))
            ok = ok && is_int_size(m->src_size) && is_int_size(m->dst_size) &&
                 m->dst_size >= m->src_size;
        else
            ok = 0;
        if (!ok) {
            PyErr_Format(PyExc_ValueError, "move %zd is invalid for %zd- and %zd-byte records",
                         i, src_size, dst_size);
            return -1;
        }
    }
    return 0;
}

PyDoc_STRVAR(move_fields_doc,
             "move_fields(source, source_size, target, target_size, template, moves, rows=None)\n"
             "-> int\n\n"
             "Fill each target record with ``template`` (empty: leave it), then apply\n"
             "``moves`` from the matching source record: the i-th, or the ``rows[i]``-th\n"
             "when ``rows`` (int64 indices) is given. The target must hold exactly one\n"
             "record per source record (per row). Returns the OR of every byte a masked\n"
             "move read.");

static PyObject *move_fields(PyObject *self, PyObject *args) {
    Py_buffer src, dst, tmpl, mv, rows_buf = {0};
    Py_ssize_t src_size, dst_size;
    PyObject *rows_obj = Py_None;
    if (!PyArg_ParseTuple(args, "y*nw*ny*y*|O", &src, &src_size, &dst, &dst_size, &tmpl, &mv,
                          &rows_obj))
        return NULL;
    PyObject *result = NULL;
    uint8_t *gathered = NULL;
    const int64_t *rows = NULL;
    Py_ssize_t records = src_size > 0 ? src.len / src_size : 0;
    Py_ssize_t count = records;
    Py_ssize_t n_moves = mv.len / (Py_ssize_t)sizeof(Move);
    const Move *moves = (const Move *)mv.buf;
    uint8_t seen = 0;
    if (src_size <= 0 || dst_size <= 0 || src.len % src_size != 0) {
        PyErr_Format(PyExc_ValueError, "source of %zd bytes is not whole %zd-byte records",
                     src.len, src_size);
        goto done;
    }
    if (rows_obj != Py_None) {
        if (PyObject_GetBuffer(rows_obj, &rows_buf, PyBUF_C_CONTIGUOUS) < 0)
            goto done;
        if (rows_buf.itemsize != 8 || rows_buf.len % 8) {
            PyErr_SetString(PyExc_ValueError, "rows must be contiguous int64 indices");
            goto done;
        }
        rows = rows_buf.buf;
        count = rows_buf.len / 8;
        for (Py_ssize_t i = 0; i < count; i++)
            if (rows[i] < 0 || rows[i] >= records) {
                PyErr_Format(PyExc_IndexError, "row %lld is outside %zd source records",
                             (long long)rows[i], records);
                goto done;
            }
        gathered = PyMem_Malloc((size_t)(BLOCK * src_size));
        if (!gathered) {
            PyErr_NoMemory();
            goto done;
        }
    }
    if (dst.len != count * dst_size) {
        PyErr_Format(PyExc_ValueError, "target of %zd bytes is not %zd records of %zd",
                     dst.len, count, dst_size);
        goto done;
    }
    if (tmpl.len != 0 && tmpl.len != dst_size) {
        PyErr_Format(PyExc_ValueError, "template is %zd bytes, records %zd", tmpl.len, dst_size);
        goto done;
    }
    if (mv.len % (Py_ssize_t)sizeof(Move) != 0) {
        PyErr_Format(PyExc_ValueError, "moves are not whole %zd-byte entries", sizeof(Move));
        goto done;
    }
    if (check_moves(moves, n_moves, src_size, dst_size))
        goto done;
    Py_BEGIN_ALLOW_THREADS
    const uint8_t *s = src.buf;
    uint8_t *d = dst.buf;
    for (Py_ssize_t first = 0; first < count; first += BLOCK) {
        Py_ssize_t n = count - first < BLOCK ? count - first : BLOCK;
        const uint8_t *sb = s + first * src_size;
        uint8_t *db = d + first * dst_size;
        if (rows) { /* gather the block's records first: the moves then run in L1 */
            for (Py_ssize_t r = 0; r < n; r++)
                memcpy(gathered + r * src_size, s + rows[first + r] * src_size, (size_t)src_size);
            sb = gathered;
        }
        if (tmpl.len)
            for (Py_ssize_t r = 0; r < n; r++)
                memcpy(db + r * dst_size, tmpl.buf, (size_t)dst_size);
        for (Py_ssize_t i = 0; i < n_moves; i++)
            apply_move(&moves[i], sb, src_size, db, dst_size, n, &seen);
    }
    Py_END_ALLOW_THREADS
    result = PyLong_FromLong(seen);
done:
    PyMem_Free(gathered);
    if (rows_buf.obj)
        PyBuffer_Release(&rows_buf);
    PyBuffer_Release(&src);
    PyBuffer_Release(&dst);
    PyBuffer_Release(&tmpl);
    PyBuffer_Release(&mv);
    return result;
}

static PyMethodDef methods[] = {
    {"move_fields", move_fields, METH_VARARGS, move_fields_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_fieldmoves",
    "Block-at-a-time field moves between two record layouts.", -1, methods,
};

PyMODINIT_FUNC PyInit__fieldmoves(void) { return PyModule_Create(&module); }
