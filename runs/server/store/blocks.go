package store

import (
	"cmp"
	"context"
	"database/sql"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"
)

// Packed metric blocks
//
// A metric value first lands as one row of the metrics table (run, key, line, step, value), in the
// transaction that acknowledges its file_stream request: those rows are the write-ahead ground truth. Rows
// are immutable once written, so the writer later moves them, in line order, into the metric_blocks table:
// one BLOB per up to blockSize values of one (run, key). It does so inside a write transaction (rows
// inserted as a block and deleted as rows in one commit, so a crash leaves either form, never both or
// neither):
//
//   - when a request has brought a run's unpacked rows of a key to a block's worth (counted since the
//     server started), whole blocks are packed and the remainder stays as rows;
//   - when a run finishes or is marked crashed, everything left is packed;
//   - migration 3 packs every series of a database written before blocks existed.
//
// A reader gets one metric as the blocks and the remaining rows of one statement (one snapshot), merged
// in line order. Lines are unique across both: a line's metric rows are inserted only along with its
// history row, which is never inserted twice nor deleted, so a packed line never comes back as a row (a
// line seen twice would be kept once).
//
// # Block format (version 1)
//
//	byte     format version, 1
//	uvarint  n, the number of values (1 to maxBlockValues)
//	byte     flags: bit 0 set when some step is NULL (the row had no integer _step)
//	[ceil(n/8) bytes]  only with flag bit 0: bit i (LSB first) set when value i has no step
//	varint   the first line; then n-1 uvarints: each line minus the one before (lines strictly increase)
//	n varints  each step minus the one before (the first minus 0; a NULL step repeats the one before),
//	           with wrap-around int64 arithmetic
//	n × 8 bytes  the values, float64 little-endian; a NaN stands for a NULL value (SQLite stores no NaN)

const (
	blockFormat    = 1
	defaultBlock   = 512   // values per packed block
	maxBlockValues = 65536 // the most a decoder accepts
)

// nullValue is the NaN that stands for a NULL value in a block.
var nullValue = math.Float64frombits(0x7ff8_0000_0000_0bad)

// errCorruptBlock reports a block that does not decode.
var errCorruptBlock = errors.New("store: corrupt metric block")

// point is one metrics row.
type point struct {
	line  int64
	step  sql.NullInt64
	value sql.NullFloat64
}

// encodeBlock encodes points (strictly increasing lines, at most maxBlockValues) in the block format.
func encodeBlock(pts []point) []byte {
	n := len(pts)
	hasNull := false
	for _, p := range pts {
		hasNull = hasNull || !p.step.Valid
	}
	b := make([]byte, 0, 16+n*11)
	b = append(b, blockFormat)
	b = binary.AppendUvarint(b, uint64(n))
	if !hasNull {
		b = append(b, 0)
	} else {
		b = append(b, 1)
		bits := make([]byte, (n+7)/8)
		for i, p := range pts {
			if !p.step.Valid {
				bits[i/8] |= 1 << (i % 8)
			}
		}
		b = append(b, bits...)
	}
	for i, p := range pts {
		if i == 0 {
			b = binary.AppendVarint(b, p.line)
		} else {
			b = binary.AppendUvarint(b, uint64(p.line-pts[i-1].line))
		}
	}
	var prev int64
	for _, p := range pts {
		st := prev
		if p.step.Valid {
			st = p.step.Int64
		}
		b = binary.AppendVarint(b, st-prev)
		prev = st
	}
	for _, p := range pts {
		v := nullValue
		if p.value.Valid {
			v = p.value.Float64
		}
		b = binary.LittleEndian.AppendUint64(b, math.Float64bits(v))
	}
	return b
}

// decodeBlock appends a block's values to out as Series reports them: NULL values skipped, NULL steps as
// -1. It returns errCorruptBlock (wrapped) for anything that is not a well-formed block.
func decodeBlock(b []byte, out *Series) error {
	if len(b) < 3 || b[0] != blockFormat {
		return fmt.Errorf("%w: bad header", errCorruptBlock)
	}
	n64, k := binary.Uvarint(b[1:])
	if k <= 0 || n64 == 0 || n64 > maxBlockValues {
		return fmt.Errorf("%w: bad length", errCorruptBlock)
	}
	n := int(n64)
	b = b[1+k:]
	if len(b) < 1 || b[0] > 1 {
		return fmt.Errorf("%w: bad flags", errCorruptBlock)
	}
	var nulls []byte
	if b[0] == 1 {
		if len(b) < 1+(n+7)/8 {
			return fmt.Errorf("%w: short null map", errCorruptBlock)
		}
		nulls = b[1 : 1+(n+7)/8]
		b = b[1+(n+7)/8:]
	} else {
		b = b[1:]
	}
	if len(b) < 10*n { // at least a byte a line, a byte a step and 8 a value
		return fmt.Errorf("%w: %d bytes for %d values", errCorruptBlock, len(b), n)
	}
	// Decode straight into the tails of out's slices, then drop the NULL values in place.
	base := len(out.Lines)
	lines := grow(&out.Lines, n)
	steps := grow(&out.Steps, n)
	values := grow(&out.Values, n)
	fail := func(what string) error {
		out.Lines, out.Steps, out.Values = out.Lines[:base], out.Steps[:base], out.Values[:base]
		return fmt.Errorf("%w: %s", errCorruptBlock, what)
	}
	// Lines and steps are mostly small deltas: a one-byte varint is read inline.
	var line int64
	for i := range n {
		var d uint64
		if len(b) > 0 && b[0] < 0x80 {
			d, b = uint64(b[0]), b[1:]
		} else {
			var k int
			if d, k = binary.Uvarint(b); k <= 0 {
				return fail("short lines")
			}
			b = b[k:]
		}
		if i == 0 {
			line = int64(d>>1) ^ -int64(d&1) // the first line is a zigzag varint
		} else if d == 0 {
			return fail("lines do not increase")
		} else {
			line += int64(d)
		}
		lines[i] = line
	}
	var step int64
	for i := range n {
		var u uint64
		if len(b) > 0 && b[0] < 0x80 {
			u, b = uint64(b[0]), b[1:]
		} else {
			var k int
			if u, k = binary.Uvarint(b); k <= 0 {
				return fail("short steps")
			}
			b = b[k:]
		}
		d := int64(u>>1) ^ -int64(u&1)
		step += d
		steps[i] = step
		if nulls != nil && nulls[i/8]&(1<<(i%8)) != 0 {
			if d != 0 {
				return fail("NULL step with a delta")
			}
			steps[i] = -1
		}
	}
	if len(b) != 8*n {
		return fail(fmt.Sprintf("%d value bytes for %d values", len(b), n))
	}
	j := 0
	for i := range n {
		v := math.Float64frombits(binary.LittleEndian.Uint64(b[8*i:]))
		if math.IsNaN(v) {
			continue // a NULL value, which Series leaves out
		}
		lines[j], steps[j], values[j] = lines[i], steps[i], v
		j++
	}
	out.Lines, out.Steps, out.Values = out.Lines[:base+j], out.Steps[:base+j], out.Values[:base+j]
	return nil
}

// grow extends *s by n elements (doubling its capacity when it must grow) and returns the new tail.
func grow[E any](s *[]E, n int) []E {
	l := len(*s)
	if cap(*s)-l < n {
		c := make([]E, l, max(2*cap(*s), l+n))
		copy(c, *s)
		*s = c
	}
	*s = (*s)[:l+n]
	return (*s)[l:]
}

// metricQuery reads one series' blocks (kind 1) and remaining rows (kind 2) in one statement, so that both
// come from one snapshot even while the writer is packing. Its first row (kind 0) is how many values there
// are, for sizing.
const metricQuery = `SELECT 0, (SELECT COALESCE(SUM(n), 0) FROM metric_blocks WHERE run_id = ?1 AND key = ?2) +
		(SELECT COUNT(*) FROM metrics WHERE run_id = ?1 AND key = ?2), NULL, NULL, NULL
	UNION ALL
	SELECT 1, first_line, NULL, NULL, data FROM metric_blocks WHERE run_id = ?1 AND key = ?2
	UNION ALL
	SELECT 2, line, step, value, NULL FROM metrics WHERE run_id = ?1 AND key = ?2`

// readMetric reads one metric of a run, blocks and rows merged, in line order.
func (s *Store) readMetric(ctx context.Context, runID int64, key string) (Series, error) {
	if s.metricStmt == nil {
		return Series{}, fmt.Errorf("read metric %s: schema older than version %d", key, blocksVersion)
	}
	rows, err := s.metricStmt.QueryContext(ctx, runID, key)
	if err != nil {
		return Series{}, fmt.Errorf("read metric %s: %w", key, err)
	}
	defer rows.Close()
	var out Series
	for rows.Next() {
		var kind int
		var line int64
		var st sql.NullInt64
		var v sql.NullFloat64
		var data sql.RawBytes
		if err := rows.Scan(&kind, &line, &st, &v, &data); err != nil {
			return Series{}, fmt.Errorf("read metric %s: %w", key, err)
		}
		switch kind {
		case 0: // the count
			if n := int(min(line, 1<<28)); n > 0 && out.Lines == nil {
				out = Series{Lines: make([]int64, 0, n), Steps: make([]int64, 0, n), Values: make([]float64, 0, n)}
			}
		case 1: // a block
			if err := decodeBlock(data, &out); err != nil {
				return Series{}, fmt.Errorf("read metric %s: block at line %d of run %d: %w", key, line, runID, err)
			}
		default: // a row
			if !v.Valid {
				continue
			}
			if !st.Valid {
				st.Int64 = -1
			}
			out.Lines = append(out.Lines, line)
			out.Steps = append(out.Steps, st.Int64)
			out.Values = append(out.Values, v.Float64)
		}
	}
	if err := rows.Err(); err != nil {
		return Series{}, fmt.Errorf("read metric %s: %w", key, err)
	}
	if len(out.Lines) == 0 {
		return Series{}, nil // as the rows alone gave it
	}
	sortSeries(&out)
	return out, nil
}

// sortSeries puts a series in line order, keeping the first of equal lines. A series read as ascending
// blocks followed by rows past their end (the usual case) is already in order and is left as it is.
func sortSeries(se *Series) {
	sorted := true
	for i := 1; i < len(se.Lines); i++ {
		if se.Lines[i] <= se.Lines[i-1] {
			sorted = false
			break
		}
	}
	if sorted {
		return
	}
	idx := make([]int, len(se.Lines))
	for i := range idx {
		idx[i] = i
	}
	slices.SortStableFunc(idx, func(a, b int) int { return cmp.Compare(se.Lines[a], se.Lines[b]) })
	var out Series
	for j, i := range idx {
		if j > 0 && se.Lines[i] == se.Lines[idx[j-1]] {
			continue
		}
		out.Lines = append(out.Lines, se.Lines[i])
		out.Steps = append(out.Steps, se.Steps[i])
		out.Values = append(out.Values, se.Values[i])
	}
	*se = out
}

// bucketKey is SQLite's value of line * buckets / lines: an integer, or a real once the product
// overflows (SQLite then computes in floating point).
type bucketKey struct {
	real bool
	i    int64
	f    float64
}

func bucketOf(line, buckets, lines int64) bucketKey {
	if overflow, p := mulInt64(line, buckets); !overflow {
		return bucketKey{i: p / lines}
	}
	return bucketKey{real: true, f: float64(line) * float64(buckets) / float64(lines)}
}

// mulInt64 reports whether a*b overflows int64, and returns the (wrapped) product.
func mulInt64(a, b int64) (overflow bool, p int64) {
	if a == 0 || b == 0 {
		return false, 0
	}
	p = a * b
	if p/b != a || (a == -1 && b == math.MinInt64) || (b == -1 && a == math.MinInt64) {
		return true, p
	}
	return false, p
}

func (k bucketKey) equal(o bucketKey) bool {
	switch {
	case !k.real && !o.real:
		return k.i == o.i
	case k.real && o.real:
		return k.f == o.f
	case k.real:
		return k.f == float64(o.i)
	default:
		return float64(k.i) == o.f
	}
}

// bucketSeries is what the MetricBuckets query computed in SQLite, done on a series read in line order:
// the lines are grouped by line * buckets / lines (SQLite arithmetic) and each group's minimum and maximum
// rows (the first in line order on ties) are kept, in line order, each row once.
func bucketSeries(se Series, lines int64, buckets int) Series {
	var out Series
	n := len(se.Lines)
	for lo := 0; lo < n; {
		key := bucketOf(se.Lines[lo], int64(buckets), lines)
		hi := lo + 1
		for hi < n && bucketOf(se.Lines[hi], int64(buckets), lines).equal(key) {
			hi++
		}
		mi, ma := lo, lo
		for i := lo + 1; i < hi; i++ {
			if se.Values[i] < se.Values[mi] {
				mi = i
			}
			if se.Values[i] > se.Values[ma] {
				ma = i
			}
		}
		for _, i := range []int{min(mi, ma), max(mi, ma)} {
			if len(out.Lines) > 0 && out.Lines[len(out.Lines)-1] == se.Lines[i] {
				continue
			}
			out.Lines = append(out.Lines, se.Lines[i])
			out.Steps = append(out.Steps, se.Steps[i])
			out.Values = append(out.Values, se.Values[i])
		}
		lo = hi
	}
	return out
}

// packKey moves a run's metric rows of key into blocks of s.blockSize values, in line order: whole blocks
// only, unless all is set, when the remainder becomes a last, shorter block. It must run inside the
// writer's transaction. It returns the rows it left unpacked.
func (s *Store) packKey(ctx context.Context, tx *sql.Tx, runID int64, key string, all bool) (int, error) {
	rows, err := tx.QueryContext(ctx, `SELECT line, step, value FROM metrics WHERE run_id = ? AND key = ? ORDER BY line`, runID, key)
	if err != nil {
		return 0, fmt.Errorf("pack %s of run %d: %w", key, runID, err)
	}
	var pts []point
	for rows.Next() {
		var p point
		if err := rows.Scan(&p.line, &p.step, &p.value); err != nil {
			rows.Close()
			return 0, fmt.Errorf("pack %s of run %d: %w", key, runID, err)
		}
		pts = append(pts, p)
	}
	if err := errors.Join(rows.Err(), rows.Close()); err != nil {
		return 0, fmt.Errorf("pack %s of run %d: %w", key, runID, err)
	}
	size := s.blockSize
	full := len(pts) / size * size
	if all {
		full = len(pts)
	}
	if full == 0 {
		return len(pts), nil
	}
	ins, err := tx.PrepareContext(ctx, `INSERT INTO metric_blocks (run_id, key, first_line, last_line, n, data)
		VALUES (?, ?, ?, ?, ?, ?)`)
	if err != nil {
		return 0, fmt.Errorf("pack %s of run %d: %w", key, runID, err)
	}
	defer ins.Close()
	for lo := 0; lo < full; lo += size {
		blk := pts[lo:min(lo+size, full)]
		if _, err := ins.ExecContext(ctx, runID, key, blk[0].line, blk[len(blk)-1].line, len(blk), encodeBlock(blk)); err != nil {
			return 0, fmt.Errorf("pack %s of run %d at line %d: %w", key, runID, blk[0].line, err)
		}
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM metrics WHERE run_id = ? AND key = ? AND line <= ?`,
		runID, key, pts[full-1].line); err != nil {
		return 0, fmt.Errorf("pack %s of run %d: delete packed rows: %w", key, runID, err)
	}
	return len(pts) - full, nil
}

// packRun packs every key of a run that has rows (all: the remainders too).
func (s *Store) packRun(ctx context.Context, tx *sql.Tx, runID int64, all bool) error {
	rows, err := tx.QueryContext(ctx, `SELECT DISTINCT key FROM metrics WHERE run_id = ?`, runID)
	if err != nil {
		return fmt.Errorf("pack run %d: %w", runID, err)
	}
	var keys []string
	for rows.Next() {
		var k string
		if err := rows.Scan(&k); err != nil {
			rows.Close()
			return fmt.Errorf("pack run %d: %w", runID, err)
		}
		keys = append(keys, k)
	}
	if err := errors.Join(rows.Err(), rows.Close()); err != nil {
		return fmt.Errorf("pack run %d: %w", runID, err)
	}
	for _, k := range keys {
		if _, err := s.packKey(ctx, tx, runID, k, all); err != nil {
			return err
		}
	}
	return nil
}

// noteRows counts metric rows just written for a run's key (writer goroutine only).
func (s *Store) noteRows(runID int64, key string, n int) {
	m := s.unpacked[runID]
	if m == nil {
		m = map[string]int{}
		s.unpacked[runID] = m
	}
	m[key] += n
}

// packDue packs the keys of a run whose counted unpacked rows reached a block. Packing failures are
// logged, not returned: the rows stay as they are, readable, and the acknowledged write stands.
func (s *Store) packDue(ctx context.Context, tx *sql.Tx, runID int64) {
	for key, n := range s.unpacked[runID] {
		if n < s.blockSize {
			continue
		}
		left, err := s.packSafely(ctx, tx, func() (int, error) { return s.packKey(ctx, tx, runID, key, false) })
		if err != nil {
			left = 0 // try again after another block's worth
		}
		s.unpacked[runID][key] = left
	}
}

// packFinal packs everything left of a run (it finished or crashed) and forgets its counts.
func (s *Store) packFinal(ctx context.Context, tx *sql.Tx, runID int64) {
	s.packSafely(ctx, tx, func() (int, error) { return 0, s.packRun(ctx, tx, runID, true) })
	delete(s.unpacked, runID)
}

// packSafely runs pack inside a savepoint of its own, rolled back (and logged) if pack fails.
func (s *Store) packSafely(ctx context.Context, tx *sql.Tx, pack func() (int, error)) (int, error) {
	if s.noPack {
		return 0, nil
	}
	if _, err := tx.ExecContext(ctx, "SAVEPOINT pack"); err != nil {
		s.log.Warn("pack metrics", "err", err)
		return 0, err
	}
	left, err := pack()
	if err != nil {
		s.log.Warn("pack metrics", "err", err)
		if _, e := tx.ExecContext(ctx, "ROLLBACK TO pack"); e != nil {
			s.log.Warn("pack metrics: rollback", "err", e)
		}
	}
	if _, e := tx.ExecContext(ctx, "RELEASE pack"); e != nil {
		s.log.Warn("pack metrics: release", "err", e)
		err = errors.Join(err, e)
	}
	return left, err
}

// blocksVersion is the schema version that brought metric_blocks.
const blocksVersion = 3

// blocksMigration creates metric_blocks; packAll, run after it, packs every series already stored.
const blocksMigration = `
CREATE TABLE metric_blocks (
	id         INTEGER PRIMARY KEY,
	run_id     INTEGER NOT NULL,
	key        TEXT NOT NULL,
	first_line INTEGER NOT NULL,
	last_line  INTEGER NOT NULL,
	n          INTEGER NOT NULL,
	data       BLOB NOT NULL,
	UNIQUE (run_id, key, first_line)
);
`

// packAllMigration packs every stored series completely (migration 3).
func packAllMigration(ctx context.Context, tx *sql.Tx) error {
	s := &Store{blockSize: defaultBlock}
	return packAllTx(ctx, tx, s, true)
}

// packAllTx packs every run's series (all: the remainders too).
func packAllTx(ctx context.Context, tx *sql.Tx, s *Store, all bool) error {
	rows, err := tx.QueryContext(ctx, `SELECT DISTINCT run_id FROM metrics`)
	if err != nil {
		return fmt.Errorf("pack all: %w", err)
	}
	var ids []int64
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return fmt.Errorf("pack all: %w", err)
		}
		ids = append(ids, id)
	}
	if err := errors.Join(rows.Err(), rows.Close()); err != nil {
		return fmt.Errorf("pack all: %w", err)
	}
	for _, id := range ids {
		if err := s.packRun(ctx, tx, id, all); err != nil {
			return err
		}
	}
	return nil
}
