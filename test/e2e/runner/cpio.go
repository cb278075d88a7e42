package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"path"
	"sort"
	"strings"
)

// cpioEntry is one file of an initramfs.
type cpioEntry struct {
	mode   uint32 // full st_mode: type bits | permissions
	data   []byte // regular file contents or symlink target
	source string // or: copy the contents of this host file
	major  uint32 // device nodes
	minor  uint32
}

const (
	sIFDIR = 0o040000
	sIFREG = 0o100000
	sIFLNK = 0o120000
	sIFCHR = 0o020000
)

// initramfs is an in-memory list of files, written as a newc cpio archive.
type initramfs struct{ entries map[string]cpioEntry }

func newInitramfs() *initramfs { return &initramfs{entries: map[string]cpioEntry{}} }

func (f *initramfs) dir(p string) {
	p = strings.Trim(path.Clean(p), "/")
	for p != "" && p != "." {
		if _, ok := f.entries[p]; !ok {
			f.entries[p] = cpioEntry{mode: sIFDIR | 0o755}
		}
		p = path.Dir(p)
	}
}

func (f *initramfs) file(p string, perm uint32, data []byte) {
	p = strings.Trim(p, "/")
	f.dir(path.Dir(p))
	f.entries[p] = cpioEntry{mode: sIFREG | perm, data: data}
}

// copyFile adds host file src at p (following symlinks), keeping its mode.
func (f *initramfs) copyFile(p, src string) error {
	st, err := os.Stat(src)
	if err != nil {
		return err
	}
	p = strings.Trim(p, "/")
	f.dir(path.Dir(p))
	f.entries[p] = cpioEntry{mode: sIFREG | uint32(st.Mode().Perm()), source: src}
	return nil
}

func (f *initramfs) symlink(p, target string) {
	p = strings.Trim(p, "/")
	f.dir(path.Dir(p))
	f.entries[p] = cpioEntry{mode: sIFLNK | 0o777, data: []byte(target)}
}

func (f *initramfs) chardev(p string, major, minor uint32) {
	p = strings.Trim(p, "/")
	f.dir(path.Dir(p))
	f.entries[p] = cpioEntry{mode: sIFCHR | 0o600, major: major, minor: minor}
}

// write writes the archive (parents before children).
func (f *initramfs) write(out string) error {
	file, err := os.Create(out)
	if err != nil {
		return err
	}
	defer file.Close()
	w := bufio.NewWriterSize(file, 1<<20)
	names := make([]string, 0, len(f.entries))
	for n := range f.entries {
		names = append(names, n)
	}
	sort.Strings(names)
	ino := uint32(1)
	for _, n := range names {
		e := f.entries[n]
		data := e.data
		if e.source != "" {
			if data, err = os.ReadFile(e.source); err != nil {
				return err
			}
		}
		if err := writeCpioRecord(w, n, e, data, ino); err != nil {
			return err
		}
		ino++
	}
	if err := writeCpioRecord(w, "TRAILER!!!", cpioEntry{}, nil, 0); err != nil {
		return err
	}
	if err := w.Flush(); err != nil {
		return err
	}
	return file.Close()
}

func writeCpioRecord(w io.Writer, name string, e cpioEntry, data []byte, ino uint32) error {
	nlink := uint32(1)
	if e.mode&sIFDIR == sIFDIR {
		nlink = 2
	}
	hdr := fmt.Sprintf("070701%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X",
		ino, e.mode, 0, 0, nlink, 0, len(data), 0, 0, e.major, e.minor, len(name)+1, 0)
	if _, err := io.WriteString(w, hdr+name+"\x00"); err != nil {
		return err
	}
	if err := pad4(w, len(hdr)+len(name)+1); err != nil {
		return err
	}
	if _, err := w.Write(data); err != nil {
		return err
	}
	return pad4(w, len(data))
}

func pad4(w io.Writer, n int) error {
	if r := n % 4; r != 0 {
		_, err := w.Write(make([]byte, 4-r))
		return err
	}
	return nil
}
