package main

// VM memory counters for the VM score (#34). The simulator's canned performance data has none for
// mem.vmmemctl.average (ballooned), mem.swapped.average and mem.compressed.average: QueryPerf answers them
// with zeros, which its encoder leaves out, so a collector sees no sample (not known). With
// -vm-memory-kb vmmemctl=KB,swapped=KB,compressed=KB every VM's series of those counters is KB (with the
// simulator's own noise, up to about a fifth either way per sample), as a busy host's VMs would show.

import (
	"flag"
	"log"
	"strconv"
	"strings"

	"github.com/vmware/govmomi/simulator/vpx"
	"github.com/vmware/govmomi/vim25/types"
)

var vmMemoryKB = flag.String("vm-memory-kb", "",
	"vmmemctl=KB,swapped=KB,compressed=KB: every VM's ballooned / swapped / compressed memory samples (mem.*.average)")

// setupVMMemory adds the -vm-memory-kb series to the simulator's VM metric data (before Create).
func setupVMMemory() {
	for _, item := range splitList(*vmMemoryKB) {
		kv := strings.SplitN(item, "=", 2)
		if len(kv) != 2 {
			log.Fatalf("-vm-memory-kb: %q is not NAME=KB", item)
		}
		name := strings.TrimSpace(kv[0])
		if name != "vmmemctl" && name != "swapped" && name != "compressed" {
			log.Fatalf("-vm-memory-kb: %q: NAME is vmmemctl, swapped or compressed", item)
		}
		kb, err := strconv.ParseInt(strings.TrimSpace(kv[1]), 10, 64)
		if err != nil || kb < 0 {
			log.Fatalf("-vm-memory-kb: %q is not NAME=KB with KB a whole number >= 0", item)
		}
		found := false
		for _, c := range vpx.PerfCounter {
			if c.GroupInfo.GetElementDescription().Key == "mem" && c.NameInfo.GetElementDescription().Key == name &&
				c.RollupType == types.PerfSummaryTypeAverage {
				vpx.VmMetricData[c.Key] = []int64{kb}
				found = true
			}
		}
		if !found {
			log.Fatalf("-vm-memory-kb: the simulator has no counter mem.%s.average", name)
		}
	}
}
