// Command verify checks a Stagegate transparency log with Go's own checksum-database
// code (golang.org/x/mod/sumdb/note and sumdb/tlog), which nobody at Stagegate wrote:
// if Go accepts our checkpoints, tiles, entry bundles and proofs, so will any witness or
// monitor built on it. tests/interop/test_go_interop.py builds and runs it (`make go`
// installs the toolchain); by hand, with no module download:
//
//	GO111MODULE=off GOPATH=/usr/share/gocode GOCACHE=$(mktemp -d) \
//	    go build -o /tmp/verify tests/interop/verify.go
//	/tmp/verify [-min-size N] [-min-checkpoints K] http://127.0.0.1:8000
//
// It reads, anonymously: /api/v1/log/key (the note verifier key), /log/checkpoint (the
// signed checkpoint), /log/tile/<L>/<N>[.p/<W>] (hash tiles, height 8, each checked
// against the signed root by tlog.TileHashReader and, since x/mod before v0.40.0 can
// miss a forged tile (CVE-2026-56865), against the tree rebuilt from the leaf hashes by
// tlog.StoredHashesForRecordHash), /log/tile/entries/<N>[.p/<W>]
// (entry bundles), /api/v1/log/proof/inclusion and /proof/consistency (RFC 6962 proofs,
// checked by tlog.CheckRecord / tlog.CheckTree and compared byte for byte with Go's own
// tlog.ProveRecord / tlog.ProveTree) and /api/v1/log/checkpoints (the signed history).
// One line per check, "ok" or "FAIL"; the exit status is 1 when any check failed.
package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

const tileHeight = 8

var (
	base     string
	client   = &http.Client{Timeout: 20 * time.Second}
	failures int
)

func ok(check, format string, args ...interface{}) {
	fmt.Printf("ok   %-12s %s\n", check, fmt.Sprintf(format, args...))
}

func fail(check, format string, args ...interface{}) {
	failures++
	fmt.Printf("FAIL %-12s %s\n", check, fmt.Sprintf(format, args...))
}

func fatal(check, format string, args ...interface{}) {
	fail(check, format, args...)
	fmt.Printf("%d check(s) failed\n", failures)
	os.Exit(1)
}

// get returns the body of a 200 answer; anything else is an error naming the status.
func get(path string) ([]byte, error) {
	resp, err := client.Get(base + path)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s: %.200q", path, resp.Status, body)
	}
	return body, nil
}

func status(path string) (int, error) {
	resp, err := client.Get(base + path)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, nil
}

func getJSON(path string, v interface{}) error {
	body, err := get(path)
	if err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("GET %s: %v", path, err)
	}
	return nil
}

func hashOf(s string) (tlog.Hash, error) {
	var h tlog.Hash
	raw, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return h, err
	}
	if len(raw) != tlog.HashSize {
		return h, fmt.Errorf("hash %q is %d bytes, not %d", s, len(raw), tlog.HashSize)
	}
	copy(h[:], raw)
	return h, nil
}

func hashesOf(list []string) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(list))
	for i, s := range list {
		h, err := hashOf(s)
		if err != nil {
			return nil, err
		}
		out[i] = h
	}
	return out, nil
}

// -- checkpoints (c2sp.org/tlog-checkpoint) ----------------------------------------------

type checkpoint struct {
	origin string
	size   int64
	root   tlog.Hash
}

// openCheckpoint verifies the note's signature with Go's note.Open and parses its text:
// origin, size and base64 root, one a line (tlog.ParseTree wants the go.sum origin).
func openCheckpoint(msg []byte, verifier note.Verifier) (checkpoint, error) {
	var c checkpoint
	n, err := note.Open(msg, note.VerifierList(verifier))
	if err != nil {
		return c, fmt.Errorf("note.Open: %v", err)
	}
	lines := strings.Split(n.Text, "\n")
	if len(lines) < 4 || lines[len(lines)-1] != "" {
		return c, fmt.Errorf("checkpoint text %q: want origin, size, root lines", n.Text)
	}
	c.origin = lines[0]
	if c.origin == "" {
		return c, fmt.Errorf("checkpoint with an empty origin")
	}
	if !regexp.MustCompile(`^(0|[1-9][0-9]*)$`).MatchString(lines[1]) {
		return c, fmt.Errorf("checkpoint size %q is not a decimal number", lines[1])
	}
	if c.size, err = strconv.ParseInt(lines[1], 10, 64); err != nil {
		return c, fmt.Errorf("checkpoint size %q: %v", lines[1], err)
	}
	if c.root, err = hashOf(lines[2]); err != nil {
		return c, fmt.Errorf("checkpoint root: %v", err)
	}
	return c, nil
}

// -- tiles (c2sp.org/tlog-tiles) ------------------------------------------------------

// tileIndex encodes n as the spec's path: 3-digit groups, all but the last with an x.
func tileIndex(n int64) string {
	s := fmt.Sprintf("%03d", n%1000)
	for n /= 1000; n > 0; n /= 1000 {
		s = fmt.Sprintf("x%03d/%s", n%1000, s)
	}
	return s
}

func tileURL(kind string, n int64, w int) string {
	p := "/log/tile/" + kind + "/" + tileIndex(n)
	if w < 1<<tileHeight {
		p += ".p/" + strconv.Itoa(w)
	}
	return p
}

// httpTiles is a tlog.TileReader over /log/tile. What it returns is unverified: Go's
// TileHashReader checks every tile against the signed root before using a hash.
type httpTiles struct {
	cache   map[tlog.Tile][]byte
	fetched int
}

func (t *httpTiles) Height() int { return tileHeight }

func (t *httpTiles) ReadTiles(tiles []tlog.Tile) ([][]byte, error) {
	out := make([][]byte, len(tiles))
	for i, tile := range tiles {
		if data, ok := t.cache[tile]; ok {
			out[i] = data
			continue
		}
		if tile.H != tileHeight || tile.L < 0 {
			return nil, fmt.Errorf("unexpected tile %+v", tile)
		}
		data, err := get(tileURL(strconv.Itoa(tile.L), tile.N, tile.W))
		if err != nil {
			return nil, err
		}
		t.fetched++
		t.cache[tile] = data
		out[i] = data
	}
	return out, nil
}

func (t *httpTiles) SaveTiles(tiles []tlog.Tile, data [][]byte) {}

// -- the tree in memory ---------------------------------------------------------------

// memTree holds every stored hash of a tree, in tlog's storage order.
type memTree []tlog.Hash

func (m memTree) ReadHashes(indexes []int64) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(indexes))
	for i, x := range indexes {
		if x < 0 || x >= int64(len(m)) {
			return nil, fmt.Errorf("stored hash %d is not in the tree", x)
		}
		out[i] = m[x]
	}
	return out, nil
}

// memoryTree appends the leaf hashes one by one with Go's tlog.StoredHashesForRecordHash.
func memoryTree(leaves []tlog.Hash) (memTree, error) {
	var m memTree
	for n, h := range leaves {
		hashes, err := tlog.StoredHashesForRecordHash(int64(n), h, m)
		if err != nil {
			return nil, err
		}
		m = append(m, hashes...)
	}
	return m, nil
}

// allTiles lists every hash tile of a tree of size n, at every level, partial ones too.
func allTiles(n int64) []tlog.Tile {
	var out []tlog.Tile
	for level := 0; n>>(uint(level)*tileHeight) > 0; level++ {
		count := n >> (uint(level) * tileHeight) // hashes stored at tree level 8·level
		for k := int64(0); k<<tileHeight < count; k++ {
			w := count - k<<tileHeight
			if w > 1<<tileHeight {
				w = 1 << tileHeight
			}
			out = append(out, tlog.Tile{H: tileHeight, L: level, N: k, W: int(w)})
		}
	}
	return out
}

// tileFrom is what tile t must hold: the hashes at tree level 8·L, [N·256, N·256+W).
func tileFrom(m memTree, t tlog.Tile) []byte {
	var out []byte
	for i := int64(0); i < int64(t.W); i++ {
		h := m[tlog.StoredHashIndex(t.L*t.H, t.N<<uint(t.H)+i)]
		out = append(out, h[:]...)
	}
	return out
}

// -- proofs ----------------------------------------------------------------------------

type inclusionJSON struct {
	Index    int64    `json:"index"`
	TreeSize int64    `json:"tree_size"`
	LeafHash string   `json:"leaf_hash"`
	Hashes   []string `json:"hashes"`
}

type consistencyJSON struct {
	First  int64    `json:"first"`
	Second int64    `json:"second"`
	Hashes []string `json:"hashes"`
}

func sameProof(a, b []tlog.Hash) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// checkInclusion fetches the served proof of leaf i in the tree of size s, checks it
// with tlog.CheckRecord against root (signed, or recomputed from verified tiles), and
// compares it with Go's own tlog.ProveRecord.
func checkInclusion(hr tlog.HashReader, leaves []tlog.Hash, i, s int64, root tlog.Hash) error {
	var p inclusionJSON
	if err := getJSON(fmt.Sprintf("/api/v1/log/proof/inclusion?index=%d&tree_size=%d", i, s), &p); err != nil {
		return err
	}
	if p.Index != i || p.TreeSize != s {
		return fmt.Errorf("asked for leaf %d in %d, got leaf %d in %d", i, s, p.Index, p.TreeSize)
	}
	leaf, err := hashOf(p.LeafHash)
	if err != nil {
		return fmt.Errorf("leaf_hash: %v", err)
	}
	if leaf != leaves[i] {
		return fmt.Errorf("leaf_hash %v is not tlog.RecordHash of entry %d (%v)", leaf, i, leaves[i])
	}
	served, err := hashesOf(p.Hashes)
	if err != nil {
		return fmt.Errorf("hashes: %v", err)
	}
	if err := tlog.CheckRecord(tlog.RecordProof(served), s, root, i, leaf); err != nil {
		return fmt.Errorf("tlog.CheckRecord(index %d, size %d): %v", i, s, err)
	}
	mine, err := tlog.ProveRecord(s, i, hr)
	if err != nil {
		return fmt.Errorf("tlog.ProveRecord(%d, %d): %v", s, i, err)
	}
	if !sameProof(served, mine) {
		return fmt.Errorf("served proof of %d in %d differs from tlog.ProveRecord's", i, s)
	}
	return nil
}

// checkConsistency: the served proof that tree (m, rootM) is a prefix of (n, rootN),
// checked by tlog.CheckTree; compared with tlog.ProveTree when hr covers n.
func checkConsistency(hr tlog.HashReader, m int64, rootM tlog.Hash, n int64, rootN tlog.Hash, compare bool) error {
	var p consistencyJSON
	if err := getJSON(fmt.Sprintf("/api/v1/log/proof/consistency?first=%d&second=%d", m, n), &p); err != nil {
		return err
	}
	if p.First != m || p.Second != n {
		return fmt.Errorf("asked for %d→%d, got %d→%d", m, n, p.First, p.Second)
	}
	served, err := hashesOf(p.Hashes)
	if err != nil {
		return fmt.Errorf("hashes: %v", err)
	}
	if err := tlog.CheckTree(tlog.TreeProof(served), n, rootN, m, rootM); err != nil {
		return fmt.Errorf("tlog.CheckTree(%d→%d): %v", m, n, err)
	}
	if compare {
		mine, err := tlog.ProveTree(n, m, hr)
		if err != nil {
			return fmt.Errorf("tlog.ProveTree(%d, %d): %v", n, m, err)
		}
		if !sameProof(served, mine) {
			return fmt.Errorf("served proof %d→%d differs from tlog.ProveTree's", m, n)
		}
	}
	return nil
}

// -- entry bundles ---------------------------------------------------------------------

// readEntries fetches every entry bundle of a tree of size n and splits each into its
// leaves: a big-endian uint16 length and the bytes, exactly W of them, nothing after.
func readEntries(n int64) ([][]byte, int, error) {
	var out [][]byte
	bundles := 0
	for k := int64(0); k*(1<<tileHeight) < n; k++ {
		w := int(n - k*(1<<tileHeight))
		if w > 1<<tileHeight {
			w = 1 << tileHeight
		}
		path := tileURL("entries", k, w)
		data, err := get(path)
		if err != nil {
			return nil, bundles, err
		}
		bundles++
		for j := 0; j < w; j++ {
			if len(data) < 2 {
				return nil, bundles, fmt.Errorf("%s: entry %d of %d is cut short", path, j, w)
			}
			size := int(binary.BigEndian.Uint16(data))
			if len(data) < 2+size {
				return nil, bundles, fmt.Errorf("%s: entry %d says %d bytes, %d left", path, j, size, len(data)-2)
			}
			out = append(out, data[2:2+size])
			data = data[2+size:]
		}
		if len(data) != 0 {
			return nil, bundles, fmt.Errorf("%s: %d bytes after its %d entries", path, len(data), w)
		}
	}
	return out, bundles, nil
}

var hex64 = regexp.MustCompile(`^[0-9a-f]{64}$`)

func checkLeafJSON(data []byte) error {
	var leaf map[string]interface{}
	if err := json.Unmarshal(data, &leaf); err != nil {
		return err
	}
	for _, key := range []string{"v", "entity_type", "at", "commitment"} {
		if _, ok := leaf[key]; !ok {
			return fmt.Errorf("no %q in %s", key, data)
		}
	}
	if c, _ := leaf["commitment"].(string); !hex64.MatchString(c) {
		return fmt.Errorf("commitment %v is not 64 hex digits", leaf["commitment"])
	}
	return nil
}

func sha256Empty() [32]byte { return sha256.Sum256(nil) }

// -- main ------------------------------------------------------------------------------

type historyItem struct {
	Origin   string `json:"origin"`
	TreeSize int64  `json:"tree_size"`
	RootHash string `json:"root_hash"`
	Note     string `json:"note"`
	SignedAt string `json:"signed_at"`
}

type historyPage struct {
	Items      []historyItem `json:"items"`
	NextBefore *int64        `json:"next_before"`
}

func main() {
	minSize := flag.Int64("min-size", 1, "fail unless the checkpoint's tree has at least this many leaves")
	minCheckpoints := flag.Int("min-checkpoints", 1, "fail unless the history holds at least this many checkpoints")
	flag.Usage = func() {
		fmt.Fprintf(os.Stderr, "usage: verify [-min-size N] [-min-checkpoints K] BASE_URL\n")
		flag.PrintDefaults()
	}
	flag.Parse()
	if flag.NArg() != 1 {
		flag.Usage()
		os.Exit(2)
	}
	base = strings.TrimRight(flag.Arg(0), "/")

	// The key.
	vkeyRaw, err := get("/api/v1/log/key")
	if err != nil {
		fatal("key", "%v", err)
	}
	vkey := strings.TrimSuffix(string(vkeyRaw), "\n")
	verifier, err := note.NewVerifier(vkey)
	if err != nil {
		fatal("key", "note.NewVerifier(%q): %v", vkey, err)
	}
	ok("key", "note.NewVerifier: name %s, key hash %08x", verifier.Name(), verifier.KeyHash())

	// The newest checkpoint.
	msg, err := get("/log/checkpoint")
	if err != nil {
		fatal("checkpoint", "%v", err)
	}
	head, err := openCheckpoint(msg, verifier)
	if err != nil {
		fatal("checkpoint", "%v", err)
	}
	if head.origin != verifier.Name() {
		fail("checkpoint", "origin %q is not the key's name %q", head.origin, verifier.Name())
	}
	if head.size < *minSize {
		fatal("checkpoint", "tree size %d is below -min-size %d", head.size, *minSize)
	}
	ok("checkpoint", "note.Open: origin %s, size %d, root %v", head.origin, head.size, head.root)

	// The tree, through tiles that Go authenticates against the signed root.
	tiles := &httpTiles{cache: map[tlog.Tile][]byte{}}
	tree := tlog.Tree{N: head.size, Hash: head.root}
	hr := tlog.TileHashReader(tree, tiles)
	th, err := tlog.TreeHash(head.size, hr)
	if err != nil {
		fatal("tiles", "tlog.TreeHash(%d) over tlog.TileHashReader: %v", head.size, err)
	}
	if th != head.root {
		fatal("tiles", "tlog.TreeHash(%d) = %v, the checkpoint says %v", head.size, th, head.root)
	}
	ok("tiles", "tlog.TreeHash(%d) over %d tile(s) = the signed root", head.size, tiles.fetched)

	// Every leaf hash, from the authenticated tiles (one ReadHashes: all level-0 tiles).
	idx := make([]int64, head.size)
	for i := range idx {
		idx[i] = tlog.StoredHashIndex(0, int64(i))
	}
	leaves, err := hr.ReadHashes(idx)
	if err != nil {
		fatal("tiles", "ReadHashes(level 0, %d leaves): %v", head.size, err)
	}
	ok("tiles", "all %d leaf hashes read and authenticated (%d tile(s) fetched)", len(leaves), tiles.fetched)

	// x/mod before v0.40.0 (Debian ships 0.7.0) has CVE-2026-56865 (go.dev/issue/80744):
	// TileHashReader authenticates the tiles it fetched for the root, but may skip the
	// full tiles below them (its loop starts at len(stx), a count of subtrees, not of
	// tiles), so a forged level-0 tile can pass. So the leaf hashes are checked again,
	// independently: Go's own tlog.StoredHashesForRecordHash builds the whole tree in
	// memory, tlog.TreeHash over it must be the signed root, and every tile the tree has,
	// at every level, must be byte for byte what that tree holds.
	mem, err := memoryTree(leaves)
	if err != nil {
		fatal("tiles", "building the tree in memory: %v", err)
	}
	if th, err := tlog.TreeHash(head.size, mem); err != nil || th != head.root {
		fatal("tiles", "tlog.TreeHash(%d) over the leaf hashes the tiles gave = %v (%v), signed %v: "+
			"a forged tile that x/mod %s let through", head.size, th, err, head.root, "< v0.40.0")
	}
	all := allTiles(head.size)
	data, err := tiles.ReadTiles(all)
	if err != nil {
		fatal("tiles", "%v", err)
	}
	for i, tile := range all {
		if !bytes.Equal(data[i], tileFrom(mem, tile)) {
			fatal("tiles", "%s is not the signed tree's (checked against tlog.StoredHashesForRecordHash)",
				tileURL(strconv.Itoa(tile.L), tile.N, tile.W))
		}
	}
	ok("tiles", "every tile of tree %d (%d, all levels) = the tree tlog.StoredHashesForRecordHash builds", head.size, len(all))

	// A tile past the tree's end is a plain 404 (what tile clients expect).
	w := int(head.size % (1 << tileHeight))
	if w == 0 {
		w = 1 << tileHeight
	}
	last := (head.size - 1) / (1 << tileHeight)
	past := tileURL("0", last+1, 1)
	if code, err := status(past); err != nil || code != http.StatusNotFound {
		fail("tiles", "GET %s (past the end): status %d, %v; want 404", past, code, err)
	} else {
		ok("tiles", "GET %s (past the end): 404", past)
	}

	// The entry bundles: every leaf's record hash is the authenticated leaf hash.
	records, bundles, err := readEntries(head.size)
	if err != nil {
		fail("entries", "%v", err)
	} else {
		bad := 0
		for i, rec := range records {
			if tlog.RecordHash(rec) != leaves[i] {
				if bad == 0 {
					fail("entries", "tlog.RecordHash(entry %d) = %v, the tiles say %v", i, tlog.RecordHash(rec), leaves[i])
				}
				bad++
			} else if err := checkLeafJSON(rec); err != nil {
				if bad == 0 {
					fail("entries", "entry %d: %v", i, err)
				}
				bad++
			}
		}
		if bad == 0 {
			ok("entries", "%d bundle(s), %d entries: each tlog.RecordHash = its authenticated leaf hash", bundles, len(records))
		} else {
			fail("entries", "%d of %d entries wrong", bad, len(records))
		}
	}

	// Inclusion proofs in the newest tree.
	n := head.size
	want := map[int64]bool{0: true, n - 1: true, n / 2: true, n / 3: true}
	for _, i := range []int64{1, 2, 3, 7, 255, 256, 257, 511, 512, 513, 767, n - 2} {
		if i >= 0 && i < n {
			want[i] = true
		}
	}
	for x := uint64(12345); len(want) < 30 && int64(len(want)) < n; {
		x = x*6364136223846793005 + 1442695040888963407
		want[int64(x>>33)%n] = true
	}
	sample := make([]int64, 0, len(want))
	for i := range want {
		sample = append(sample, i)
	}
	sort.Slice(sample, func(a, b int) bool { return sample[a] < sample[b] })
	good := 0
	for _, i := range sample {
		if err := checkInclusion(mem, leaves, i, n, head.root); err != nil {
			fail("inclusion", "%v", err)
		} else {
			good++
		}
	}
	if good == len(sample) {
		ok("inclusion", "%d proofs in tree %d: tlog.CheckRecord accepts, = tlog.ProveRecord", good, n)
	}

	// The history: every checkpoint signed, each a prefix of the newest.
	var history []historyItem
	before := ""
	for page := 0; page < 100; page++ {
		var p historyPage
		if err := getJSON("/api/v1/log/checkpoints?limit=50"+before, &p); err != nil {
			fatal("history", "%v", err)
		}
		history = append(history, p.Items...)
		if p.NextBefore == nil {
			break
		}
		before = fmt.Sprintf("&before=%d", *p.NextBefore)
	}
	if len(history) < *minCheckpoints {
		fail("history", "%d checkpoint(s), below -min-checkpoints %d", len(history), *minCheckpoints)
	}
	sizes := map[int64]bool{}
	var older []checkpoint
	seenHead := false
	for j, item := range history {
		label := fmt.Sprintf("checkpoint %d (size %d)", j, item.TreeSize)
		c, err := openCheckpoint([]byte(item.Note), verifier)
		if err != nil {
			fail("history", "%s: %v", label, err)
			continue
		}
		root, err := hashOf(item.RootHash)
		if err != nil {
			fail("history", "%s: root_hash: %v", label, err)
			continue
		}
		if c.origin != item.Origin || c.size != item.TreeSize || c.root != root {
			fail("history", "%s: the JSON (%s, %d, %v) is not the signed note (%s, %d, %v)",
				label, item.Origin, item.TreeSize, root, c.origin, c.size, c.root)
			continue
		}
		if c.origin != head.origin {
			fail("history", "%s: origin %q, the newest says %q", label, c.origin, head.origin)
		}
		if sizes[c.size] {
			fail("history", "%s: a second checkpoint of this size", label)
		}
		sizes[c.size] = true
		if j > 0 && c.size >= history[j-1].TreeSize {
			fail("history", "%s: not newest first (after size %d)", label, history[j-1].TreeSize)
		}
		switch {
		case c.size == head.size:
			seenHead = true
			if c.root != head.root {
				fail("history", "%s: root %v, /log/checkpoint says %v: a fork", label, c.root, head.root)
			}
		case c.size > head.size: // signed after we read /log/checkpoint: head must be its prefix
			if err := checkConsistency(mem, head.size, head.root, c.size, c.root, false); err != nil {
				fail("history", "%s: %v", label, err)
			}
		case c.size == 0:
			if c.root != tlog.Hash(sha256Empty()) {
				fail("history", "%s: the empty tree's root is not SHA-256 of nothing", label)
			}
		default:
			mine, err := tlog.TreeHash(c.size, mem)
			if err != nil || mine != c.root {
				fail("history", "%s: tlog.TreeHash(%d) from the newest tree = %v (%v), signed %v: a fork",
					label, c.size, mine, err, c.root)
				continue
			}
			if err := checkConsistency(mem, c.size, c.root, head.size, head.root, true); err != nil {
				fail("history", "%s: %v", label, err)
				continue
			}
			older = append(older, c)
		}
	}
	if !seenHead {
		fail("history", "no checkpoint of size %d (the one /log/checkpoint served)", head.size)
	}
	ok("history", "%d signed checkpoint(s); %d older ones consistent with size %d (tlog.CheckTree, = tlog.ProveTree)",
		len(history), len(older), head.size)

	// Older trees: proofs between them, and inclusion at their sizes.
	pairs, incl := 0, 0
	for j, c := range older {
		if j+1 < len(older) {
			d := older[j+1] // older still
			if err := checkConsistency(mem, d.size, d.root, c.size, c.root, true); err != nil {
				fail("consistency", "%v", err)
			} else {
				pairs++
			}
		}
		for _, i := range []int64{0, c.size / 2, c.size - 1} {
			if err := checkInclusion(mem, leaves, i, c.size, c.root); err != nil {
				fail("inclusion", "in older tree %d: %v", c.size, err)
			} else {
				incl++
			}
		}
	}
	ok("consistency", "%d proof(s) between older checkpoints; %d inclusion proofs in older trees", pairs, incl)

	// Trivial consistency proofs: a tree with itself is the empty proof.
	var same consistencyJSON
	if err := getJSON(fmt.Sprintf("/api/v1/log/proof/consistency?first=%d&second=%d", n, n), &same); err != nil {
		fail("consistency", "%v", err)
	} else if len(same.Hashes) != 0 {
		fail("consistency", "%d→%d: %d hashes, want none", n, n, len(same.Hashes))
	} else if err := tlog.CheckTree(nil, n, head.root, n, head.root); err != nil {
		fail("consistency", "tlog.CheckTree(%d→%d, empty): %v", n, n, err)
	} else {
		ok("consistency", "%d→%d is the empty proof", n, n)
	}

	if failures > 0 {
		fmt.Printf("%d check(s) failed\n", failures)
		os.Exit(1)
	}
	fmt.Println("all checks passed")
}
