package main

// Several clusters, EVC modes, host networks and name prefixes for the simulated inventory;
// relocations across clusters (checked as vCenter checks them, with the host, pool and network
// lists kept in step) and across vCenters (RelocateVM_Task with spec.service).

import (
	"context"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path"
	"reflect"
	"sort"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/property"
	"github.com/vmware/govmomi/session"
	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/view"
	"github.com/vmware/govmomi/vim25"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/soap"
	"github.com/vmware/govmomi/vim25/types"
)

// ---------------------------------------------------------------------------------------------
// Inventory

// inventoryOptions are the flags shaping the clusters beyond what simulator.VPX makes.
type inventoryOptions struct {
	namePrefix   string     // prefixed to every VM's and host's name
	evc          []string   // cluster k gets evc[k mod len] as summary.currentEVCModeKey
	hostEVC      []string   // the hosts of cluster k get hostEVC[k mod len] as summary.maxEVCModeKey
	hostNetworks [][]string // the hosts of cluster k get the networks hostNetworks[k mod len]
	partial      int        // -partial-datastores, to mount the datastores alike in every cluster
}

// splitList splits "a,b" into its non-empty items.
func splitList(s string) []string {
	var out []string
	for _, item := range strings.Split(s, ",") {
		if item = strings.TrimSpace(item); item != "" {
			out = append(out, item)
		}
	}
	return out
}

// splitGroups splits "a,b;c" into [[a b] [c]].
func splitGroups(s string) [][]string {
	var out [][]string
	for _, group := range strings.Split(s, ";") {
		if items := splitList(group); len(items) > 0 {
			out = append(out, items)
		}
	}
	return out
}

// clustersByName lists the simulator's clusters in name order (DC0_C0, DC0_C1, ..).
func clustersByName() []*simulator.ClusterComputeResource {
	var list []*simulator.ClusterComputeResource
	for _, e := range simulator.Map.All("ClusterComputeResource") {
		list = append(list, e.(*simulator.ClusterComputeResource))
	}
	sort.Slice(list, func(i, j int) bool {
		a, b := list[i].Name, list[j].Name
		if len(a) != len(b) {
			return len(a) < len(b) // DC0_C2 before DC0_C10
		}
		return a < b
	})
	return list
}

func hostObj(ref types.ManagedObjectReference) *simulator.HostSystem {
	h, _ := simulator.Map.Get(ref).(*simulator.HostSystem)
	return h
}

func refs(list []types.ManagedObjectReference) []types.ManagedObjectReference {
	return append([]types.ManagedObjectReference(nil), list...)
}

func hasRef(list []types.ManagedObjectReference, ref types.ManagedObjectReference) bool {
	for _, r := range list {
		if r == ref {
			return true
		}
	}
	return false
}

// setupInventory applies the options to the created inventory (after placeRoundRobin and
// setupStorage, which work on the simulator's own names).
func setupInventory(clusters []*simulator.ClusterComputeResource, opt inventoryOptions) {
	// The 0.24 simulator draws an instance UUID but serves the fixed one of its template: every
	// instance would have the same.
	si := simulator.Map.Get(vim25.ServiceInstance).(*simulator.ServiceInstance)
	simulator.Map.WithLock(si, func() { si.Content.About.InstanceUuid = uuid.New().String() })
	shareStorage(clusters, opt.partial)
	setupNetworks(clusters, opt.hostNetworks)
	setupEVC(clusters, opt.evc, opt.hostEVC)
	if opt.namePrefix != "" {
		prefixNames(opt.namePrefix)
	}
}

// shareStorage mounts the datastores on the hosts of every cluster, as setupStorage does for the
// first one: all of them, the last `partial` on the first half of each cluster's hosts only.
func shareStorage(clusters []*simulator.ClusterComputeResource, partial int) {
	if len(clusters) < 2 {
		return
	}
	var stores []*simulator.Datastore
	for _, e := range simulator.Map.All("Datastore") {
		stores = append(stores, e.(*simulator.Datastore))
	}
	sort.Slice(stores, func(i, j int) bool { return stores[i].Name < stores[j].Name })
	var all []types.ManagedObjectReference
	for _, ds := range stores {
		all = append(all, ds.Self)
	}
	for _, cluster := range clusters[1:] {
		hosts := cluster.Host
		perStore, mounts := datastoreMounts(stores, hosts, partial)
		for i, ds := range stores {
			list := perStore[i]
			simulator.Map.WithLock(ds, func() { ds.Host = append(ds.Host, list...) })
		}
		for _, h := range hosts {
			host := hostObj(h)
			list := mounts[h]
			simulator.Map.WithLock(host, func() { host.Datastore = list })
		}
		datastores := refs(all)
		simulator.Map.WithLock(cluster, func() { cluster.Datastore = datastores })
	}
}

// networkByName finds a datacenter's network (or creates a standard one, through the first
// host's network system as a port group on vSwitch0).
func networkByName(dc *simulator.Datacenter, name string, first *simulator.HostSystem) types.ManagedObjectReference {
	if e := simulator.Map.FindByName(name, dc.Network); e != nil {
		return e.Reference()
	}
	ns := simulator.Map.Get(*first.ConfigManager.NetworkSystem).(*simulator.HostNetworkSystem)
	ns.AddPortGroup(&simulator.Context{}, &types.AddPortGroup{This: ns.Self,
		Portgrp: types.HostPortGroupSpec{Name: name, VswitchName: "vSwitch0"}})
	e := simulator.Map.FindByName(name, dc.Network)
	if e == nil {
		log.Fatalf("creating network %s failed", name)
	}
	return e.Reference()
}

func datacenterOf(e mo.Entity) *simulator.Datacenter {
	for e != nil {
		if dc, ok := e.(*simulator.Datacenter); ok {
			return dc
		}
		parent := e.Entity().Parent
		if parent == nil {
			return nil
		}
		e, _ = simulator.Map.Get(*parent).(mo.Entity)
	}
	return nil
}

// clusterVMs lists the VMs running on a cluster's hosts.
func clusterVMs(cluster *simulator.ClusterComputeResource) []*simulator.VirtualMachine {
	var out []*simulator.VirtualMachine
	for _, e := range simulator.Map.All("VirtualMachine") {
		vm := e.(*simulator.VirtualMachine)
		if vm.Runtime.Host != nil && hasRef(cluster.Host, *vm.Runtime.Host) {
			out = append(out, vm)
		}
	}
	return out
}

// setupNetworks gives each cluster's hosts their networks, in place of the simulator's (VM
// Network and the distributed port groups), and connects its VMs' network cards to the first of
// them; then it fills every network's host and VM lists from the hosts' and VMs' (the simulator
// leaves a standard network's empty).
func setupNetworks(clusters []*simulator.ClusterComputeResource, groups [][]string) {
	for k, cluster := range clusters {
		if len(groups) == 0 || len(cluster.Host) == 0 {
			break
		}
		dc := datacenterOf(cluster)
		names := groups[k%len(groups)]
		var nets []types.ManagedObjectReference
		for _, name := range names {
			nets = append(nets, networkByName(dc, name, hostObj(cluster.Host[0])))
		}
		for _, h := range cluster.Host {
			host := hostObj(h)
			simulator.Map.WithLock(host, func() {
				simulator.Map.Update(host, []types.PropertyChange{{Name: "network", Val: refs(nets)}})
			})
		}
		simulator.Map.WithLock(cluster, func() {
			simulator.Map.Update(cluster, []types.PropertyChange{{Name: "network", Val: refs(nets)}})
		})
		for _, vm := range clusterVMs(cluster) {
			setNICs(vm, func(int32) (string, types.ManagedObjectReference, bool) { return names[0], nets[0], true })
		}
	}
	// Every network's host and VM lists, from the hosts' and VMs' own lists.
	hosts := map[types.ManagedObjectReference][]types.ManagedObjectReference{}
	vms := map[types.ManagedObjectReference][]types.ManagedObjectReference{}
	for _, e := range simulator.Map.All("HostSystem") {
		for _, n := range e.(*simulator.HostSystem).Network {
			hosts[n] = append(hosts[n], e.Reference())
		}
	}
	for _, e := range simulator.Map.All("VirtualMachine") {
		for _, n := range e.(*simulator.VirtualMachine).Network {
			vms[n] = append(vms[n], e.Reference())
		}
	}
	for _, e := range simulator.Map.All("Network") {
		if n, ok := e.(*mo.Network); ok {
			simulator.Map.WithLock(n, func() { n.Host, n.Vm = hosts[n.Self], vms[n.Self] })
		}
	}
	for _, e := range simulator.Map.All("DistributedVirtualPortgroup") {
		if pg, ok := e.(*simulator.DistributedVirtualPortgroup); ok {
			simulator.Map.WithLock(pg, func() { pg.Host, pg.Vm = hosts[pg.Self], vms[pg.Self] })
		}
	}
}

// portBacking is the backing of a card on a distributed port group (nil: not one of this
// simulator's).
func portBacking(ref types.ManagedObjectReference) *types.VirtualEthernetCardDistributedVirtualPortBackingInfo {
	pg, ok := simulator.Map.Get(ref).(*simulator.DistributedVirtualPortgroup)
	if !ok || pg.Config.DistributedVirtualSwitch == nil {
		return nil
	}
	dvs, ok := simulator.Map.Get(*pg.Config.DistributedVirtualSwitch).(*simulator.DistributedVirtualSwitch)
	if !ok {
		return nil
	}
	return &types.VirtualEthernetCardDistributedVirtualPortBackingInfo{
		Port: types.DistributedVirtualSwitchPortConnection{PortgroupKey: pg.Key, SwitchUuid: dvs.Uuid}}
}

// cardNetwork is the network of a card's backing (false: neither a standard network nor a
// distributed port group).
func cardNetwork(c *types.VirtualEthernetCard) (nic, bool) {
	switch b := c.Backing.(type) {
	case *types.VirtualEthernetCardNetworkBackingInfo:
		n := nic{name: b.DeviceName}
		if b.Network != nil {
			n.ref = *b.Network
		}
		return n, true
	case *types.VirtualEthernetCardDistributedVirtualPortBackingInfo:
		n := nic{ref: types.ManagedObjectReference{Type: "DistributedVirtualPortgroup", Value: b.Port.PortgroupKey}}
		if e, ok := simulator.Map.Get(n.ref).(mo.Entity); ok {
			n.name = e.Entity().Name
		}
		return n, true
	}
	return nic{}, false
}

// setNICs points a VM's network cards at other networks: pick returns, for a card's device
// key, the network's name and reference, a standard network or a distributed port group (false:
// leave the card as it is). The VM's network list and its guest's NIC list follow.
func setNICs(vm *simulator.VirtualMachine, pick func(key int32) (string, types.ManagedObjectReference, bool)) {
	simulator.Map.WithLock(vm, func() {
		names := map[int32]string{}
		var nets []types.ManagedObjectReference
		for _, dev := range vm.Config.Hardware.Device {
			card, ok := dev.(types.BaseVirtualEthernetCard)
			if !ok {
				continue
			}
			c := card.GetVirtualEthernetCard()
			if name, ref, change := pick(c.Key); change {
				r := ref
				if ref.Type == "DistributedVirtualPortgroup" {
					if b := portBacking(ref); b != nil {
						c.Backing = b
					}
				} else {
					c.Backing = &types.VirtualEthernetCardNetworkBackingInfo{
						VirtualDeviceDeviceBackingInfo: types.VirtualDeviceDeviceBackingInfo{DeviceName: name}, Network: &r}
				}
				if c.DeviceInfo != nil {
					c.DeviceInfo.GetDescription().Summary = name
				}
				names[c.Key] = name
			}
			if n, ok := cardNetwork(c); ok && n.ref.Value != "" && !hasRef(nets, n.ref) {
				nets = append(nets, n.ref)
			}
		}
		if vm.Guest != nil {
			for i := range vm.Guest.Net {
				if name, ok := names[vm.Guest.Net[i].DeviceConfigId]; ok {
					vm.Guest.Net[i].Network = name
				}
			}
		}
		simulator.Map.Update(vm, []types.PropertyChange{{Name: "network", Val: nets}})
	})
}

// The EVC modes of vSphere 8, in each vendor's order (vendorTier), with a CPU typical of each.
var evcModes = []struct{ key, label, cpu string }{
	{"intel-merom", `Intel® "Merom" Generation`, "Intel(R) Xeon(R) CPU 5160 @ 3.00GHz"},
	{"intel-penryn", `Intel® "Penryn" Generation`, "Intel(R) Xeon(R) CPU X5470 @ 3.33GHz"},
	{"intel-nehalem", `Intel® "Nehalem" Generation`, "Intel(R) Xeon(R) CPU X5570 @ 2.93GHz"},
	{"intel-westmere", `Intel® "Westmere" Generation`, "Intel(R) Xeon(R) CPU X5670 @ 2.93GHz"},
	{"intel-sandybridge", `Intel® "Sandy Bridge" Generation`, "Intel(R) Xeon(R) CPU E5-2670 0 @ 2.60GHz"},
	{"intel-ivybridge", `Intel® "Ivy Bridge" Generation`, "Intel(R) Xeon(R) CPU E5-2670 v2 @ 2.50GHz"},
	{"intel-haswell", `Intel® "Haswell" Generation`, "Intel(R) Xeon(R) CPU E5-2680 v3 @ 2.50GHz"},
	{"intel-broadwell", `Intel® "Broadwell" Generation`, "Intel(R) Xeon(R) CPU E5-2680 v4 @ 2.40GHz"},
	{"intel-skylake", `Intel® "Skylake" Generation`, "Intel(R) Xeon(R) Gold 6130 CPU @ 2.10GHz"},
	{"intel-cascadelake", `Intel® "Cascade Lake" Generation`, "Intel(R) Xeon(R) Gold 6230 CPU @ 2.10GHz"},
	{"intel-icelake", `Intel® "Ice Lake" Generation`, "Intel(R) Xeon(R) Gold 6330 CPU @ 2.00GHz"},
	{"intel-sapphirerapids", `Intel® "Sapphire Rapids" Generation`, "Intel(R) Xeon(R) Gold 6430"},
	{"amd-rev-e", `AMD Opteron™ Generation 1`, "Dual Core AMD Opteron(tm) Processor 275"},
	{"amd-rev-f", `AMD Opteron™ Generation 2`, "Dual-Core AMD Opteron(tm) Processor 2218"},
	{"amd-greyhound-no3dnow", `AMD Opteron™ Generation 3 (no 3DNow!™)`, "Quad-Core AMD Opteron(tm) Processor 2384"},
	{"amd-greyhound", `AMD Opteron™ Generation 3`, "Quad-Core AMD Opteron(tm) Processor 2384"},
	{"amd-bulldozer", `AMD Opteron™ Generation 4`, "AMD Opteron(TM) Processor 6274"},
	{"amd-piledriver", `AMD Opteron™ "Piledriver" Generation`, "AMD Opteron(tm) Processor 6376"},
	{"amd-steamroller", `AMD Opteron™ "Steamroller" Generation`, "AMD Opteron(tm) X3421 APU"},
	{"amd-zen", `AMD "Zen" Generation`, "AMD EPYC 7551 32-Core Processor"},
	{"amd-zen2", `AMD "Zen 2" Generation`, "AMD EPYC 7502 32-Core Processor"},
	{"amd-zen3", `AMD "Zen 3" Generation`, "AMD EPYC 7543 32-Core Processor"},
	{"amd-zen4", `AMD "Zen 4" Generation`, "AMD EPYC 9354 32-Core Processor"},
}

func evcVendor(key string) string {
	switch {
	case strings.HasPrefix(key, "intel-"):
		return "intel"
	case strings.HasPrefix(key, "amd-"):
		return "amd"
	}
	return ""
}

// evcTier is a mode's rank among its vendor's modes (-1: not a known mode).
func evcTier(key string) int {
	tier := 0
	for _, m := range evcModes {
		if evcVendor(m.key) != evcVendor(key) {
			continue
		}
		if m.key == key {
			return tier
		}
		tier++
	}
	return -1
}

// evcSupports tells whether a host whose EVC mode is host can run a VM that needs mode need
// (unknown or unset modes: no objection).
func evcSupports(host, need string) bool {
	if host == "" || need == "" || evcTier(host) < 0 || evcTier(need) < 0 {
		return true
	}
	return evcVendor(host) == evcVendor(need) && evcTier(host) >= evcTier(need)
}

func evcCPU(key string) string {
	for _, m := range evcModes {
		if m.key == key {
			return m.cpu
		}
	}
	switch evcVendor(key) {
	case "intel":
		return "Intel(R) Xeon(R) CPU"
	case "amd":
		return "AMD EPYC Processor"
	}
	return ""
}

// setupEVC sets the clusters' and hosts' EVC modes, a CPU of the host mode's vendor on every
// host, each powered-on VM's runtime.minRequiredEVCModeKey (its cluster's mode, else its host's)
// and the EVC modes the service instance lists in capability.supportedEVCMode.
func setupEVC(clusters []*simulator.ClusterComputeResource, evc, hostEVC []string) {
	si := simulator.Map.Get(vim25.ServiceInstance).(*simulator.ServiceInstance)
	var modes []types.EVCMode
	for _, m := range evcModes {
		modes = append(modes, types.EVCMode{
			ElementDescription: types.ElementDescription{Key: m.key, Description: types.Description{Label: m.label, Summary: m.label}},
			Vendor:             evcVendor(m.key), VendorTier: int32(evcTier(m.key)), Track: []string{evcVendor(m.key)},
		})
	}
	simulator.Map.WithLock(si, func() { si.Capability.SupportedEVCMode = modes })
	if len(hostEVC) == 0 {
		hostEVC = evc
	}
	for _, key := range append(append([]string(nil), evc...), hostEVC...) {
		if evcTier(key) < 0 {
			log.Printf("warning: %s is not an EVC mode of vSphere 8; relocations do not check it", key)
		}
	}
	for k, cluster := range clusters {
		mode, hostMode := "", ""
		if len(evc) > 0 {
			mode = evc[k%len(evc)]
		}
		if len(hostEVC) > 0 {
			hostMode = hostEVC[k%len(hostEVC)]
		}
		if mode == "" && hostMode == "" {
			continue
		}
		simulator.Map.WithLock(cluster, func() {
			if s, ok := cluster.Summary.(*types.ClusterComputeResourceSummary); ok {
				s.CurrentEVCModeKey = mode
			}
		})
		vendor, cpu := evcVendor(hostMode), evcCPU(hostMode)
		for _, h := range cluster.Host {
			host := hostObj(h)
			simulator.Map.WithLock(host, func() {
				host.Summary.MaxEVCModeKey = hostMode
				host.Summary.CurrentEVCModeKey = mode
				if vendor == "" {
					return
				}
				host.Summary.Hardware.CpuModel = cpu
				// The hosts share the template's package list: each gets its own.
				pkgs := append([]types.HostCpuPackage(nil), host.Hardware.CpuPkg...)
				for i := range pkgs {
					pkgs[i].Vendor = vendor
					pkgs[i].Description = cpu
				}
				host.Hardware.CpuPkg = pkgs
			})
		}
		for _, vm := range clusterVMs(cluster) {
			need := mode
			if need == "" {
				need = hostMode
			}
			if vm.Runtime.PowerState != types.VirtualMachinePowerStatePoweredOn {
				continue
			}
			simulator.Map.WithLock(vm, func() {
				simulator.Map.Update(vm, []types.PropertyChange{
					{Name: "runtime.minRequiredEVCModeKey", Val: need},
					{Name: "summary.runtime.minRequiredEVCModeKey", Val: need},
				})
			})
		}
	}
}

// prefixNames puts prefix before every VM's and host's name.
func prefixNames(prefix string) {
	for _, e := range simulator.Map.All("VirtualMachine") {
		vm := e.(*simulator.VirtualMachine)
		name := prefix + vm.Name
		simulator.Map.WithLock(vm, func() {
			simulator.Map.Update(vm, []types.PropertyChange{
				{Name: "name", Val: name}, {Name: "config.name", Val: name}, {Name: "summary.config.name", Val: name},
			})
		})
	}
	for _, e := range simulator.Map.All("HostSystem") {
		host := e.(*simulator.HostSystem)
		name := prefix + host.Name
		simulator.Map.WithLock(host, func() {
			simulator.Map.Update(host, []types.PropertyChange{{Name: "name", Val: name}, {Name: "summary.config.name", Val: name}})
		})
	}
}

// ---------------------------------------------------------------------------------------------
// Placement lists

// placement is where a VM runs: its host and resource pool.
type placement struct {
	host, pool types.ManagedObjectReference
}

func placementOf(ref types.ManagedObjectReference) placement {
	var p placement
	vm, ok := simulator.Map.Get(ref).(*simulator.VirtualMachine)
	if !ok {
		return p
	}
	simulator.Map.WithLock(vm, func() {
		if vm.Runtime.Host != nil {
			p.host = *vm.Runtime.Host
		}
		if vm.ResourcePool != nil {
			p.pool = *vm.ResourcePool
		}
	})
	return p
}

func poolObj(ref types.ManagedObjectReference) *mo.ResourcePool {
	switch p := simulator.Map.Get(ref).(type) {
	case *simulator.ResourcePool:
		return &p.ResourcePool
	case *simulator.VirtualApp:
		return &p.ResourcePool
	}
	return nil
}

// fixPlacement brings the hosts' and pools' VM lists in step with a VM that moved from before
// (the 0.24 simulator leaves the source's lists holding it and the target's without it), and
// counts a move between two hosts of one cluster in the cluster's summary.numVmotions.
func fixPlacement(ref types.ManagedObjectReference, before placement) {
	after := placementOf(ref)
	if after.host != before.host && after.host.Value != "" {
		if h := hostObj(before.host); h != nil {
			simulator.Map.RemoveReference(h, &h.Vm, ref)
		}
		if h := hostObj(after.host); h != nil {
			simulator.Map.AddReference(h, &h.Vm, ref)
			old := hostObj(before.host)
			if old != nil && old.Parent != nil && h.Parent != nil && *old.Parent == *h.Parent {
				if cluster, ok := simulator.Map.Get(*h.Parent).(*simulator.ClusterComputeResource); ok {
					simulator.Map.WithLock(cluster, func() {
						if s, ok := cluster.Summary.(*types.ClusterComputeResourceSummary); ok {
							s.NumVmotions++
						}
					})
				}
			}
		}
	}
	if after.pool != before.pool && after.pool.Value != "" {
		if p := poolObj(before.pool); p != nil {
			simulator.Map.RemoveReference(simulator.Map.Get(before.pool), &p.Vm, ref)
		}
		if p := poolObj(after.pool); p != nil {
			simulator.Map.AddReference(simulator.Map.Get(after.pool), &p.Vm, ref)
		}
	}
}

// ---------------------------------------------------------------------------------------------
// Relocations

// relocateTaskName makes a task's info.name RelocateVM_Task, a method pyVmomi knows (the
// simulator's own "relocateVm" gives "relocateVm", which pyVim's WaitForTask cannot read while
// the task runs).
const relocateTaskName = "RelocateVMTask"

// relocator serves the relocations the simulator cannot: across vCenters, and those vCenter
// refuses (a pool of another cluster than the host's, a host in maintenance mode, standby or
// disconnected, a datastore or network the host lacks, an EVC mode the host cannot offer).
type relocator struct {
	inner    http.Handler // the simulator's own handler (behind the instrumentation)
	sdk      url.URL      // its SDK URL
	user     string
	password string
	timeout  time.Duration
}

// relocateFault is a relocation's refusal: the fault and its message (the task's
// localizedMessage, which pyVmomi shows as the fault's msg).
type relocateFault struct {
	fault types.BaseMethodFault
	msg   string
}

func refused(fault types.BaseMethodFault, format string, args ...interface{}) *relocateFault {
	return &relocateFault{fault, fmt.Sprintf(format, args...)}
}

// relocate serves a RelocateVM_Task the simulator should not handle itself and says whether it
// did: one with spec.service (moved to the other vCenter) or one vCenter refuses (a task that
// ends in error, or a ManagedObjectNotFound fault for a reference that names nothing). Other
// relocations go on to the simulator, their network cards already moved to spec.deviceChange's
// networks.
func (x *relocator) relocate(w http.ResponseWriter, this types.ManagedObjectReference, spec types.VirtualMachineRelocateSpec,
	delay time.Duration, st *stats, rec relocation) bool {
	vm, ok := simulator.Map.Get(this).(*simulator.VirtualMachine)
	if !ok {
		return false
	}
	if spec.Service != nil {
		rec.TargetVCenter = spec.Service.Url
		rec.Target, rec.Datastore, rec.Disks = "", "", nil // named in the other vCenter, once found there
		x.serveTask(w, vm, st, rec, func(rec *relocation) *relocateFault {
			time.Sleep(delay)
			return x.crossVCenter(vm, spec, rec)
		})
		return true
	}
	if missing := missingRef(spec); missing != nil {
		w.Header().Set("Content-Type", "text/xml; charset=utf-8")
		w.WriteHeader(http.StatusInternalServerError)
		fmt.Fprintf(w, soapFault, "managed object not found: "+missing.Value, missing.Type, missing.Value)
		return true
	}
	nics, bad := checkRelocate(vm, spec)
	if bad != nil {
		x.serveTask(w, vm, st, rec, func(*relocation) *relocateFault { return bad })
		return true
	}
	if len(nics) > 0 {
		setNICs(vm, func(key int32) (string, types.ManagedObjectReference, bool) {
			n, ok := nics[key]
			return n.name, n.ref, ok
		})
	}
	return false
}

// serveTask answers the call with a task running work in the background, logging the relocation
// when it ends.
func (x *relocator) serveTask(w http.ResponseWriter, vm *simulator.VirtualMachine, st *stats, rec relocation,
	work func(*relocation) *relocateFault) {
	task := simulator.CreateTask(vm, relocateTaskName, func(*simulator.Task) (types.AnyType, types.BaseMethodFault) { return nil, nil })
	go func() {
		simulator.Map.Update(task, []types.PropertyChange{
			{Name: "info.startTime", Val: time.Now()},
			{Name: "info.state", Val: types.TaskInfoStateRunning},
		})
		bad := work(&rec)
		state := types.TaskInfoStateSuccess
		var fault interface{}
		if bad != nil {
			state = types.TaskInfoStateError
			fault = types.LocalizedMethodFault{Fault: bad.fault, LocalizedMessage: bad.msg}
			rec.Failed = true
			rec.Error = bad.msg
		}
		rec.End = time.Now().UnixNano()
		st.mu.Lock()
		st.relocations = append(st.relocations, rec)
		st.mu.Unlock()
		simulator.Map.Update(task, []types.PropertyChange{
			{Name: "info.completeTime", Val: time.Now()},
			{Name: "info.state", Val: state},
			{Name: "info.result", Val: nil},
			{Name: "info.error", Val: fault},
		})
	}()
	w.Header().Set("Content-Type", "text/xml; charset=utf-8")
	w.WriteHeader(http.StatusOK)
	fmt.Fprintf(w, soapResponse, "RelocateVM_Task", task.Self.Value, "RelocateVM_Task")
}

// missingRef returns the first reference of a same-vCenter spec that names no object of its type.
func missingRef(spec types.VirtualMachineRelocateSpec) *types.ManagedObjectReference {
	check := []*types.ManagedObjectReference{spec.Host, spec.Pool, spec.Datastore, spec.Folder}
	for i := range spec.Disk {
		check = append(check, &spec.Disk[i].Datastore)
	}
	for _, ref := range check {
		if ref == nil {
			continue
		}
		obj := simulator.Map.Get(*ref)
		ok := obj != nil
		switch ref.Type {
		case "HostSystem":
			_, ok = obj.(*simulator.HostSystem)
		case "ResourcePool", "VirtualApp":
			ok = poolObj(*ref) != nil
		case "Datastore":
			_, ok = obj.(*simulator.Datastore)
		case "Folder":
			_, ok = obj.(*simulator.Folder)
		default:
			ok = false
		}
		if !ok {
			return ref
		}
	}
	return nil
}

// nic is a network card's network.
type nic struct {
	name string
	ref  types.ManagedObjectReference
}

// vmFacts is what a relocation check needs of a VM, read under its lock.
type vmFacts struct {
	name      string
	host      types.ManagedObjectReference
	pool      types.ManagedObjectReference
	poweredOn bool
	needEVC   string
	disks     map[int32]types.ManagedObjectReference // device key -> datastore
	nics      map[int32]nic                          // device key -> network
}

func factsOf(vm *simulator.VirtualMachine) vmFacts {
	f := vmFacts{disks: map[int32]types.ManagedObjectReference{}, nics: map[int32]nic{}}
	simulator.Map.WithLock(vm, func() {
		f.name = vm.Name
		if vm.Runtime.Host != nil {
			f.host = *vm.Runtime.Host
		}
		if vm.ResourcePool != nil {
			f.pool = *vm.ResourcePool
		}
		f.poweredOn = vm.Runtime.PowerState == types.VirtualMachinePowerStatePoweredOn
		if f.poweredOn {
			f.needEVC = vm.Runtime.MinRequiredEVCModeKey
		}
		for _, dev := range vm.Config.Hardware.Device {
			switch d := dev.(type) {
			case *types.VirtualDisk:
				if b, ok := d.Backing.(types.BaseVirtualDeviceFileBackingInfo); ok {
					if ds := b.GetVirtualDeviceFileBackingInfo().Datastore; ds != nil {
						f.disks[d.Key] = *ds
					}
				}
			case types.BaseVirtualEthernetCard:
				c := d.GetVirtualEthernetCard()
				if n, ok := cardNetwork(c); ok {
					f.nics[c.Key] = n
				}
			}
		}
	})
	return f
}

// nicChanges reads spec.deviceChange's network cards: device key -> the network given by name
// (deviceName) or reference, resolved by lookup (nil: no such network).
func nicChanges(spec types.VirtualMachineRelocateSpec, lookup func(name string, ref *types.ManagedObjectReference) *nic) (map[int32]nic, *relocateFault) {
	out := map[int32]nic{}
	for _, change := range spec.DeviceChange {
		c := change.GetVirtualDeviceConfigSpec()
		card, ok := c.Device.(types.BaseVirtualEthernetCard)
		if !ok {
			continue
		}
		e := card.GetVirtualEthernetCard()
		var name string
		var ref *types.ManagedObjectReference
		switch b := e.Backing.(type) {
		case *types.VirtualEthernetCardNetworkBackingInfo:
			name, ref = b.DeviceName, b.Network
		case *types.VirtualEthernetCardDistributedVirtualPortBackingInfo:
			ref = &types.ManagedObjectReference{Type: "DistributedVirtualPortgroup", Value: b.Port.PortgroupKey}
		default:
			return nil, refused(&types.NotSupported{},
				"spec.deviceChange: network card %d: only standard networks and distributed port groups are supported", e.Key)
		}
		n := lookup(name, ref)
		if n == nil {
			what := name
			if ref != nil {
				what = ref.Type + ":" + ref.Value
			}
			return nil, refused(&types.InvalidDeviceBacking{}, "spec.deviceChange: network card %d: no network %s", e.Key, what)
		}
		out[e.Key] = *n
	}
	return out, nil
}

// hostState refuses a target host in maintenance mode, not powered on or not connected.
func hostState(name string, ref types.ManagedObjectReference, rt types.HostRuntimeInfo) *relocateFault {
	r := ref
	switch {
	case rt.InMaintenanceMode:
		return refused(&types.InvalidHostState{Host: &r}, "host %s is in maintenance mode", name)
	case rt.ConnectionState != "" && rt.ConnectionState != types.HostSystemConnectionStateConnected:
		return refused(&types.HostNotConnected{}, "host %s is %s", name, rt.ConnectionState)
	case rt.PowerState != "" && rt.PowerState != types.HostSystemPowerStatePoweredOn:
		return refused(&types.InvalidHostState{Host: &r}, "host %s is %s", name, rt.PowerState)
	}
	return nil
}

// checkRelocate checks a same-vCenter relocation as vCenter does and returns the network cards
// spec.deviceChange moves: a host of another cluster needs a pool of that cluster; the host must
// be usable, mount the disks' datastores, have the cards' networks and offer the EVC mode the VM
// runs with.
func checkRelocate(vm *simulator.VirtualMachine, spec types.VirtualMachineRelocateSpec) (map[int32]nic, *relocateFault) {
	f := factsOf(vm)
	cur := hostObj(f.host)
	if cur == nil {
		return nil, nil
	}
	var dc *simulator.Datacenter
	if dc = datacenterOf(cur); dc == nil {
		return nil, nil
	}
	changes, bad := nicChanges(spec, func(name string, ref *types.ManagedObjectReference) *nic {
		if ref != nil {
			if e, ok := simulator.Map.Get(*ref).(mo.Entity); ok && hasRef(dc.Network, *ref) {
				return &nic{name: e.Entity().Name, ref: *ref}
			}
			return nil
		}
		if e := simulator.Map.FindByName(name, dc.Network); e != nil {
			return &nic{name: name, ref: e.Reference()}
		}
		return nil
	})
	if bad != nil {
		return nil, bad
	}
	target, hostRef := cur, f.host
	if spec.Host != nil {
		hostRef = *spec.Host
		target = hostObj(hostRef)
	}
	var name string
	var parent, curParent types.ManagedObjectReference
	var rt types.HostRuntimeInfo
	var mounts, nets []types.ManagedObjectReference
	var hostEVC string
	simulator.Map.WithLock(target, func() {
		name, rt = target.Name, target.Runtime
		if target.Parent != nil {
			parent = *target.Parent
		}
		mounts, nets = refs(target.Datastore), refs(target.Network)
		hostEVC = target.Summary.CurrentEVCModeKey
		if hostEVC == "" {
			hostEVC = target.Summary.MaxEVCModeKey
		}
	})
	if target != cur {
		simulator.Map.WithLock(cur, func() {
			if cur.Parent != nil {
				curParent = *cur.Parent
			}
		})
	} else {
		curParent = parent
	}
	moving := hostRef != f.host
	if moving {
		if bad := hostState(name, hostRef, rt); bad != nil {
			return nil, bad
		}
	}
	if spec.Pool == nil && parent != curParent {
		return nil, refused(&types.InvalidArgument{InvalidProperty: "spec.pool"},
			"host %s is in %s, not in the VM's cluster %s: spec.pool must be a resource pool of %s",
			name, entityName(&parent), entityName(&curParent), entityName(&parent))
	}
	if spec.Pool != nil {
		pool := poolObj(*spec.Pool)
		var owner types.ManagedObjectReference
		simulator.Map.WithLock(simulator.Map.Get(*spec.Pool), func() { owner = pool.Owner })
		if spec.Host == nil && owner != curParent {
			return nil, refused(&types.InvalidArgument{InvalidProperty: "spec.host"},
				"resource pool %s is in %s: a move to another cluster needs spec.host (the simulator has no DRS placement)",
				entityName(spec.Pool), entityName(&owner))
		}
		if owner != parent {
			return nil, refused(&types.InvalidArgument{InvalidProperty: "spec.pool"},
				"resource pool %s belongs to %s, host %s to %s", entityName(spec.Pool), entityName(&owner), name, entityName(&parent))
		}
	}
	for key, ds := range f.disks {
		for _, loc := range spec.Disk {
			if loc.DiskId == key {
				ds = loc.Datastore
			}
		}
		if spec.Datastore != nil && !diskLocated(spec, key) {
			ds = *spec.Datastore
		}
		if !hasRef(mounts, ds) {
			d := ds
			return nil, refused(&types.InvalidDatastore{Datastore: &d, Name: datastoreName(ds)},
				"datastore %s (disk %d) is not mounted on host %s", datastoreName(ds), key, name)
		}
	}
	for key, n := range f.nics {
		if c, ok := changes[key]; ok {
			n = c
		}
		if n.ref.Value != "" && !hasRef(nets, n.ref) {
			return nil, refused(&types.InvalidDeviceBacking{},
				"network card %d uses network %s, which host %s does not have", key, n.name, name)
		}
	}
	if moving && f.poweredOn && !evcSupports(hostEVC, f.needEVC) {
		v, h := vm.Self, hostRef
		return nil, refused(&types.FeatureRequirementsNotMet{Vm: &v, Host: &h},
			"VM %s runs with EVC mode %s; host %s offers %s", f.name, f.needEVC, name, hostEVC)
	}
	return changes, nil
}

func diskLocated(spec types.VirtualMachineRelocateSpec, key int32) bool {
	for _, loc := range spec.Disk {
		if loc.DiskId == key {
			return true
		}
	}
	return false
}

// ---------------------------------------------------------------------------------------------
// Across vCenters

// handlerTransport sends a client's requests straight to an HTTP handler, in-process.
type handlerTransport struct{ h http.Handler }

func (t handlerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	rec := httptest.NewRecorder()
	t.h.ServeHTTP(rec, r)
	return rec.Result(), nil
}

// connect logs in to a vCenter's SDK; transport nil: over the network.
func connect(ctx context.Context, u *url.URL, transport http.RoundTripper, user, password string) (*vim25.Client, *session.Manager, error) {
	sc := soap.NewClient(u, true)
	if transport != nil {
		sc.Client.Transport = transport
	}
	c, err := vim25.NewClient(ctx, sc)
	if err != nil {
		return nil, nil, err
	}
	sm := session.NewManager(c)
	if err := sm.Login(ctx, url.UserPassword(user, password)); err != nil {
		return nil, nil, err
	}
	return c, sm, nil
}

// sourceVM is what is carried to the other vCenter.
type sourceVM struct {
	facts     vmFacts
	guestID   string
	cpus      int32
	cores     int32
	memoryMB  int64
	uuid      string
	instance  string
	disks     []*types.VirtualDisk
	cards     []types.BaseVirtualEthernetCard
	sourceDSs []types.ManagedObjectReference
}

func readSource(vm *simulator.VirtualMachine) sourceVM {
	s := sourceVM{facts: factsOf(vm)}
	simulator.Map.WithLock(vm, func() {
		c := vm.Config
		s.guestID, s.cpus, s.cores, s.memoryMB = c.GuestId, c.Hardware.NumCPU, c.Hardware.NumCoresPerSocket, int64(c.Hardware.MemoryMB)
		s.uuid, s.instance = c.Uuid, c.InstanceUuid
		for _, dev := range c.Hardware.Device {
			switch d := dev.(type) {
			case *types.VirtualDisk:
				dup := *d
				s.disks = append(s.disks, &dup)
			case types.BaseVirtualEthernetCard:
				s.cards = append(s.cards, d)
			}
		}
		s.sourceDSs = refs(vm.Datastore)
	})
	sort.Slice(s.disks, func(i, j int) bool { return s.disks[i].Key < s.disks[j].Key })
	return s
}

// crossVCenter moves a VM to the vCenter of spec.service: it logs in there with the locator's
// credential, checks the target's instance UUID, folder, pool, host, datastores, networks, EVC
// mode and that no VM there has the name, creates the VM there (same name, CPUs, memory, disks
// of the same sizes on the target datastores, network cards with their MAC addresses, BIOS and
// instance UUIDs), powers it on if it ran, then powers off and destroys the source VM. Any
// refusal leaves both vCenters as they were.
func (x *relocator) crossVCenter(vm *simulator.VirtualMachine, spec types.VirtualMachineRelocateSpec, rec *relocation) *relocateFault {
	svc := spec.Service
	cred, ok := svc.Credential.(*types.ServiceLocatorNamePassword)
	if !ok {
		return refused(&types.InvalidArgument{InvalidProperty: "spec.service.credential"},
			"spec.service.credential: only a user name and password (ServiceLocatorNamePassword) is supported")
	}
	u, err := url.Parse(svc.Url)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return refused(&types.InvalidArgument{InvalidProperty: "spec.service.url"}, "spec.service.url %q is not an http(s) URL", svc.Url)
	}
	if u.Path == "" || u.Path == "/" {
		u.Path = "/sdk"
	}
	src := readSource(vm)
	ctx, cancel := context.WithTimeout(context.Background(), x.timeout)
	defer cancel()
	c, sm, err := connect(ctx, u, nil, cred.Username, cred.Password)
	if err != nil {
		if soap.IsSoapFault(err) {
			switch soap.ToSoapFault(err).VimFault().(type) {
			case types.InvalidLogin, *types.InvalidLogin:
				return refused(&types.InvalidLogin{}, "login to vCenter %s as %s failed: incorrect user name or password", svc.Url, cred.Username)
			}
		}
		return refused(&types.SystemError{Reason: err.Error()}, "cannot reach vCenter %s: %s", svc.Url, err)
	}
	defer func() { _ = sm.Logout(context.Background()) }()
	if got := c.ServiceContent.About.InstanceUuid; !strings.EqualFold(got, svc.InstanceUuid) {
		return refused(&types.InvalidArgument{InvalidProperty: "spec.service.instanceUuid"},
			"spec.service.instanceUuid %q does not match vCenter %s (instance UUID %s)", svc.InstanceUuid, svc.Url, got)
	}
	t, bad := x.resolveTarget(ctx, c, spec, src)
	if bad != nil {
		return bad
	}
	rec.Target = t.hostName
	rec.Datastore = t.dsNames[t.home]
	rec.Disks = nil
	for _, d := range src.disks {
		rec.Disks = append(rec.Disks, fmt.Sprintf("%d:%s", d.Key, t.dsNames[t.disks[d.Key]]))
	}
	created, bad := createTarget(ctx, c, src, t)
	if bad != nil {
		return bad
	}
	if src.facts.poweredOn {
		target := object.NewVirtualMachine(c, created)
		if err := waitTask(ctx, func() (*object.Task, error) { return target.PowerOn(ctx) }); err != nil {
			if task, e := target.Destroy(ctx); e == nil {
				_ = task.Wait(ctx)
			}
			return refused(&types.SystemError{Reason: err.Error()}, "powering on %s in vCenter %s failed: %s", src.facts.name, svc.Url, err)
		}
	}
	if err := x.removeSource(ctx, vm.Self, src); err != nil {
		return refused(&types.SystemError{Reason: err.Error()},
			"%s runs in vCenter %s but removing it here failed: %s", src.facts.name, svc.Url, err)
	}
	return nil
}

// waitTask starts a task and waits for its end.
func waitTask(ctx context.Context, start func() (*object.Task, error)) error {
	task, err := start()
	if err != nil {
		return err
	}
	return task.Wait(ctx)
}

// target is the place in the other vCenter, checked.
type target struct {
	folder, pool, host types.ManagedObjectReference
	hostName           string
	home               types.ManagedObjectReference           // the VM's home datastore
	disks              map[int32]types.ManagedObjectReference // disk key -> datastore
	dsNames            map[types.ManagedObjectReference]string
	nics               map[int32]nic // card key -> network there
}

func notThere(what string, ref types.ManagedObjectReference, svc string) *relocateFault {
	r := ref
	return refused(&types.ManagedObjectNotFound{Obj: r}, "%s %s:%s does not exist in vCenter %s", what, ref.Type, ref.Value, svc)
}

func (x *relocator) resolveTarget(ctx context.Context, c *vim25.Client, spec types.VirtualMachineRelocateSpec, src sourceVM) (*target, *relocateFault) {
	svc := spec.Service.Url
	pc := property.DefaultCollector(c)
	t := &target{disks: map[int32]types.ManagedObjectReference{}, dsNames: map[types.ManagedObjectReference]string{}}
	if spec.Folder == nil {
		return nil, refused(&types.InvalidArgument{InvalidProperty: "spec.folder"}, "a move to another vCenter needs spec.folder (a VM folder there)")
	}
	if spec.Pool == nil {
		return nil, refused(&types.InvalidArgument{InvalidProperty: "spec.pool"}, "a move to another vCenter needs spec.pool (a resource pool there)")
	}
	var folder mo.Folder
	if spec.Folder.Type != "Folder" || pc.RetrieveOne(ctx, *spec.Folder, []string{"name", "childType"}, &folder) != nil || folder.Self.Value == "" {
		return nil, notThere("spec.folder", *spec.Folder, svc)
	}
	isVMFolder := false
	for _, kind := range folder.ChildType {
		isVMFolder = isVMFolder || kind == "VirtualMachine"
	}
	if !isVMFolder {
		return nil, refused(&types.InvalidArgument{InvalidProperty: "spec.folder"}, "spec.folder %s in vCenter %s is not a VM folder", folder.Name, svc)
	}
	var pool mo.ResourcePool
	if (spec.Pool.Type != "ResourcePool" && spec.Pool.Type != "VirtualApp") ||
		pc.RetrieveOne(ctx, *spec.Pool, []string{"name", "owner"}, &pool) != nil || pool.Self.Value == "" {
		return nil, notThere("spec.pool", *spec.Pool, svc)
	}
	var cluster mo.ComputeResource
	if err := pc.RetrieveOne(ctx, pool.Owner, []string{"name", "host"}, &cluster); err != nil {
		return nil, notThere("the cluster of spec.pool", pool.Owner, svc)
	}
	// The datastores the disks go to: their locator's, else spec.datastore.
	for _, d := range src.disks {
		switch {
		case diskLocated(spec, d.Key):
			for _, loc := range spec.Disk {
				if loc.DiskId == d.Key {
					t.disks[d.Key] = loc.Datastore
				}
			}
		case spec.Datastore != nil:
			t.disks[d.Key] = *spec.Datastore
		default:
			return nil, refused(&types.InvalidArgument{InvalidProperty: "spec.datastore"},
				"a move to another vCenter needs spec.datastore or a disk locator for disk %d", d.Key)
		}
	}
	switch {
	case spec.Datastore != nil:
		t.home = *spec.Datastore
	case len(src.disks) > 0:
		t.home = t.disks[src.disks[0].Key]
	default:
		return nil, refused(&types.InvalidArgument{InvalidProperty: "spec.datastore"}, "a move to another vCenter needs spec.datastore")
	}
	needed := []types.ManagedObjectReference{t.home}
	for _, ds := range t.disks {
		needed = append(needed, ds)
	}
	for _, ref := range needed {
		if _, ok := t.dsNames[ref]; ok {
			continue
		}
		var ds mo.Datastore
		if ref.Type != "Datastore" || pc.RetrieveOne(ctx, ref, []string{"name"}, &ds) != nil || ds.Self.Value == "" {
			return nil, notThere("datastore", ref, svc)
		}
		t.dsNames[ref] = ds.Name
	}
	// The host: spec.host, else the first host of the pool's cluster that fits.
	candidates := cluster.Host
	if spec.Host != nil {
		candidates = []types.ManagedObjectReference{*spec.Host}
	}
	var hosts []mo.HostSystem
	if len(candidates) > 0 {
		if spec.Host != nil && spec.Host.Type != "HostSystem" {
			return nil, notThere("spec.host", *spec.Host, svc)
		}
		err := pc.Retrieve(ctx, candidates, []string{"name", "parent", "datastore", "network", "runtime",
			"summary.currentEVCModeKey", "summary.maxEVCModeKey"}, &hosts)
		if err != nil || len(hosts) == 0 {
			if spec.Host != nil {
				return nil, notThere("spec.host", *spec.Host, svc)
			}
			return nil, refused(&types.SystemError{Reason: fmt.Sprint(err)}, "reading the hosts of %s in vCenter %s: %v", cluster.Name, svc, err)
		}
	}
	sort.Slice(hosts, func(i, j int) bool { return hosts[i].Name < hosts[j].Name })
	netNames := map[types.ManagedObjectReference]string{}
	var last *relocateFault
	for _, h := range hosts {
		bad := x.fits(ctx, c, spec, src, t, h, pool, cluster, netNames)
		if bad == nil {
			t.folder, t.pool, t.host, t.hostName = folder.Self, pool.Self, h.Self, h.Name
			return t, x.unique(ctx, c, src.facts.name, svc)
		}
		last = bad
	}
	if last == nil {
		last = refused(&types.InvalidArgument{InvalidProperty: "spec.host"}, "cluster %s in vCenter %s has no host", cluster.Name, svc)
	}
	return nil, last
}

// fits checks one target host: in the pool's cluster, usable, mounting the datastores, with the
// cards' networks and the VM's EVC mode. It fills t.nics.
func (x *relocator) fits(ctx context.Context, c *vim25.Client, spec types.VirtualMachineRelocateSpec, src sourceVM, t *target,
	h mo.HostSystem, pool mo.ResourcePool, cluster mo.ComputeResource, netNames map[types.ManagedObjectReference]string) *relocateFault {
	svc := spec.Service.Url
	if h.Parent == nil || *h.Parent != pool.Owner {
		return refused(&types.InvalidArgument{InvalidProperty: "spec.pool"},
			"resource pool %s of vCenter %s belongs to %s, not to the cluster of host %s", pool.Name, svc, cluster.Name, h.Name)
	}
	if bad := hostState(h.Name, h.Self, h.Runtime); bad != nil {
		return bad
	}
	for _, ds := range append([]types.ManagedObjectReference{t.home}, diskStores(t)...) {
		if !hasRef(h.Datastore, ds) {
			d := ds
			return refused(&types.InvalidDatastore{Datastore: &d, Name: t.dsNames[ds]},
				"datastore %s is not mounted on host %s of vCenter %s", t.dsNames[ds], h.Name, svc)
		}
	}
	pc := property.DefaultCollector(c)
	if len(h.Network) > 0 {
		var unknown []types.ManagedObjectReference
		for _, n := range h.Network {
			if _, ok := netNames[n]; !ok {
				unknown = append(unknown, n)
			}
		}
		if len(unknown) > 0 {
			var nets []types.ObjectContent
			if err := pc.Retrieve(ctx, unknown, []string{"name"}, &nets); err == nil {
				for _, n := range nets {
					for _, p := range n.PropSet {
						if name, ok := p.Val.(string); ok && p.Name == "name" {
							netNames[n.Obj] = name
						}
					}
				}
			}
		}
	}
	byName := map[string]types.ManagedObjectReference{}
	for _, n := range h.Network {
		byName[netNames[n]] = n
	}
	changes, bad := nicChanges(spec, func(name string, ref *types.ManagedObjectReference) *nic {
		if ref != nil {
			if hasRef(h.Network, *ref) {
				return &nic{name: netNames[*ref], ref: *ref}
			}
			return nil
		}
		if r, ok := byName[name]; ok {
			return &nic{name: name, ref: r}
		}
		return nil
	})
	if bad != nil {
		return bad
	}
	t.nics = map[int32]nic{}
	for _, card := range src.cards {
		e := card.GetVirtualEthernetCard()
		n, ok := changes[e.Key]
		if !ok {
			name := src.facts.nics[e.Key].name
			r, found := byName[name]
			if !found {
				return refused(&types.InvalidDeviceBacking{},
					"network card %d uses network %s, which host %s of vCenter %s does not have (map it with spec.deviceChange)", e.Key, name, h.Name, svc)
			}
			n = nic{name: name, ref: r}
		}
		t.nics[e.Key] = n
	}
	hostEVC := h.Summary.CurrentEVCModeKey
	if hostEVC == "" {
		hostEVC = h.Summary.MaxEVCModeKey
	}
	if src.facts.poweredOn && !evcSupports(hostEVC, src.facts.needEVC) {
		hr := h.Self
		return refused(&types.FeatureRequirementsNotMet{Host: &hr},
			"VM %s runs with EVC mode %s; host %s of vCenter %s offers %s", src.facts.name, src.facts.needEVC, h.Name, svc, hostEVC)
	}
	return nil
}

func diskStores(t *target) []types.ManagedObjectReference {
	var out []types.ManagedObjectReference
	for _, ds := range t.disks {
		out = append(out, ds)
	}
	return out
}

// unique refuses a name a VM of the target vCenter already has.
func (x *relocator) unique(ctx context.Context, c *vim25.Client, name, svc string) *relocateFault {
	m := view.NewManager(c)
	v, err := m.CreateContainerView(ctx, c.ServiceContent.RootFolder, []string{"VirtualMachine"}, true)
	if err != nil {
		return refused(&types.SystemError{Reason: err.Error()}, "listing the VMs of vCenter %s: %s", svc, err)
	}
	defer func() { _ = v.Destroy(context.Background()) }()
	var vms []mo.VirtualMachine
	if err := v.Retrieve(ctx, []string{"VirtualMachine"}, []string{"name"}, &vms); err != nil {
		return refused(&types.SystemError{Reason: err.Error()}, "listing the VMs of vCenter %s: %s", svc, err)
	}
	for _, other := range vms {
		if other.Name == name {
			return refused(&types.DuplicateName{Name: name, Object: other.Self}, "vCenter %s already has a VM named %s", svc, name)
		}
	}
	return nil
}

// createTarget creates the VM in the other vCenter (powered off) and returns its reference.
func createTarget(ctx context.Context, c *vim25.Client, src sourceVM, t *target) (types.ManagedObjectReference, *relocateFault) {
	name := src.facts.name
	home := "[" + t.dsNames[t.home] + "]"
	var devices object.VirtualDeviceList
	scsi, _ := devices.CreateSCSIController("pvscsi")
	devices = append(devices, scsi)
	for i, d := range src.disks {
		file := fmt.Sprintf("disk%d.vmdk", i+1)
		if b, ok := d.Backing.(types.BaseVirtualDeviceFileBackingInfo); ok {
			if f := path.Base(b.GetVirtualDeviceFileBackingInfo().FileName); strings.HasSuffix(f, ".vmdk") {
				file = f
			}
		}
		ds := t.disks[d.Key]
		disk := devices.CreateDisk(scsi.(types.BaseVirtualController), ds, "["+t.dsNames[ds]+"] "+path.Join(name, file))
		disk.CapacityInKB = d.CapacityInKB
		disk.CapacityInBytes = d.CapacityInBytes
		if disk.CapacityInKB == 0 {
			disk.CapacityInKB = d.CapacityInBytes / 1024
		}
		devices = append(devices, disk)
	}
	for _, card := range src.cards {
		e := card.GetVirtualEthernetCard()
		n := t.nics[e.Key]
		ref := n.ref
		fresh := reflect.New(reflect.TypeOf(card).Elem()).Interface().(types.BaseVirtualEthernetCard)
		fc := fresh.GetVirtualEthernetCard()
		fc.Key = devices.NewKey()
		if ref.Type == "DistributedVirtualPortgroup" {
			b, err := object.NewDistributedVirtualPortgroup(c, ref).EthernetCardBackingInfo(ctx)
			if err != nil {
				return types.ManagedObjectReference{}, refused(&types.SystemError{Reason: err.Error()},
					"reading port group %s in the other vCenter: %s", n.name, err)
			}
			fc.Backing = b
		} else {
			fc.Backing = &types.VirtualEthernetCardNetworkBackingInfo{
				VirtualDeviceDeviceBackingInfo: types.VirtualDeviceDeviceBackingInfo{DeviceName: n.name},
				Network:                        &ref,
			}
		}
		fc.AddressType, fc.MacAddress = e.AddressType, e.MacAddress
		fc.Connectable = e.Connectable
		devices = append(devices, fresh.(types.BaseVirtualDevice))
	}
	changes, err := devices.ConfigSpec(types.VirtualDeviceConfigSpecOperationAdd)
	if err != nil {
		return types.ManagedObjectReference{}, refused(&types.SystemError{Reason: err.Error()}, "building %s for the other vCenter: %s", name, err)
	}
	config := types.VirtualMachineConfigSpec{
		Name: name, GuestId: src.guestID, NumCPUs: src.cpus, NumCoresPerSocket: src.cores, MemoryMB: src.memoryMB,
		Uuid: src.uuid, InstanceUuid: src.instance,
		Files:        &types.VirtualMachineFileInfo{VmPathName: home},
		DeviceChange: changes,
	}
	folder := object.NewFolder(c, t.folder)
	pool := object.NewResourcePool(c, t.pool)
	host := object.NewHostSystem(c, t.host)
	task, err := folder.CreateVM(ctx, config, pool, host)
	if err != nil {
		return types.ManagedObjectReference{}, refused(&types.SystemError{Reason: err.Error()}, "creating %s in the other vCenter failed: %s", name, err)
	}
	info, err := task.WaitForResult(ctx, nil)
	if err != nil {
		return types.ManagedObjectReference{}, refused(&types.SystemError{Reason: err.Error()}, "creating %s in the other vCenter failed: %s", name, err)
	}
	return info.Result.(types.ManagedObjectReference), nil
}

// removeSource powers off and destroys the source VM through the simulator's own SDK (in-process,
// so the requests are not counted in /_vcsim/stats), then keeps its datastores' free space within
// their capacity.
func (x *relocator) removeSource(ctx context.Context, ref types.ManagedObjectReference, src sourceVM) error {
	sdk := x.sdk
	c, sm, err := connect(ctx, &sdk, handlerTransport{x.inner}, x.user, x.password)
	if err != nil {
		return err
	}
	defer func() { _ = sm.Logout(context.Background()) }()
	vm := object.NewVirtualMachine(c, ref)
	if src.facts.poweredOn {
		if err := waitTask(ctx, func() (*object.Task, error) { return vm.PowerOff(ctx) }); err != nil {
			return err
		}
	}
	if err := waitTask(ctx, func() (*object.Task, error) { return vm.Destroy(ctx) }); err != nil {
		return err
	}
	for _, r := range src.sourceDSs {
		if ds, ok := simulator.Map.Get(r).(*simulator.Datastore); ok {
			simulator.Map.WithLock(ds, func() {
				if ds.Summary.FreeSpace > ds.Summary.Capacity {
					ds.Summary.FreeSpace = ds.Summary.Capacity
					ds.Info.GetDatastoreInfo().FreeSpace = ds.Summary.FreeSpace
				}
			})
		}
	}
	return nil
}
