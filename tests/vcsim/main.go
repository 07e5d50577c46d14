// Command vcsim serves govmomi's vCenter simulator (simulator.VPX) for the balancer's
// integration tests.
//
// One datacenter with -clusters clusters (DC0_C0..), each with -hosts hosts (DC0_C0_H0..) and
// -hosts x -vms-per-host powered-on VMs (DC0_C0_RP0_VM0..) in its root resource pool, placed
// round-robin on its hosts (VM i on host i mod hosts). -name-prefix P puts P before every VM's
// and host's name (two instances' names then differ).
// It listens on 127.0.0.1:PORT over plain http, prints the SDK URL on stdout when ready
// and shuts down on SIGTERM or SIGINT.
//
// Added to the simulator of govmomi 0.24:
//
//   - PowerDownHostToStandBy_Task and PowerUpHostFromStandBy_Task (not implemented there).
//     They cannot be added by wrapping the simulator's HostSystem type in its object map,
//     because the simulator's own methods type-assert hosts to *simulator.HostSystem
//     (RelocateVM_Task would panic), so they are served by an HTTP layer in front of the
//     SDK endpoint: the request is decoded with the simulator's own SOAP decoder, a real
//     simulator task is created and run, runtime.powerState is set to standBy / poweredOn
//     through the object registry (so property collectors see the change), and the task
//     reference is returned.
//   - Test instrumentation under /_vcsim/ (plain HTTP, not SOAP):
//     GET  /_vcsim/stats          SOAP request counts by method, and every RelocateVM_Task
//     call with VM, source, target and its start / end time (Unix ns)
//     POST /_vcsim/reset          zero the counts and the relocation log
//     POST /_vcsim/fail?vm=NAME   make the next RelocateVM_Task of that VM end in a task error
//     POST /_vcsim/hold?after=N   every RelocateVM_Task within this vCenter from now on, but the next N
//     (default 0), returns its task at once and the task stays running (the VM where it was) until
//     POST /_vcsim/release, as a vMotion in progress; POST /_vcsim/release?fail=1 ends the held
//     tasks in a task error instead (InsufficientResourcesFault, the VMs where they were);
//     POST /_vcsim/hold?cancel=1 makes a held task honour CancelTask (it ends in RequestCanceled, the
//     VM where it was, logged "cancelled"); otherwise CancelTask is not implemented (as in the stock
//     simulator: a MethodNotFound fault) and the task goes on, as a vCenter not honouring a cancel
//     POST /_vcsim/outage?ms=N   for N ms every SOAP request finds its connection closed without an
//     answer (vCenter unreachable; its tasks go on meanwhile)
//     POST /_vcsim/drop-reply?n=N the next N RelocateVM_Task calls are carried out (their tasks start)
//     and their connections closed without the reply (a reply lost on the network)
//     Each logged relocation carries its task's id (task).
//   - Per-host DPM overrides: ReconfigureComputeResource_Task's dpmHostConfigSpec is stored in the
//     cluster's configurationEx.dpmHostConfig (the simulator drops it).
//   - HA settings: ReconfigureComputeResource_Task stores rules, groups and VM overrides but
//     drops spec.dasConfig (checked: configurationEx.dasConfig reads back unchanged), so the
//     layer in front stores the dasConfig it carries (enabled, admission control enabled, the
//     admission control policy, failover level) in the cluster's configurationEx before the
//     simulator handles the rest of the request.
//   - -relocate-task-ms: RelocateVM_Task returns its task at once and the task runs that long
//     before the VM moves, as a real vMotion (-relocate-ms instead delays the call itself).
//   - Storage: -datastores N datastores (LocalDS_0.., every VM's disk on LocalDS_0), each listing
//     every host that mounts it (the simulator's own lists only the last host), the last
//     -partial-datastores of them mounted by the first half of the hosts only; -pod puts them in a
//     datastore cluster (StoragePod DC0_POD0); -datastore-gb / -datastore-free-gb set each one's
//     capacity and free space (otherwise the temporary directory's file system's); -disk-gb sets
//     the size of every VM's disk.
//   - Storage vMotion: a RelocateVM_Task with a datastore or disk locators moves the disks (their
//     backing file name and datastore), the VM's home with spec.datastore, the VM's datastore list
//     and the datastores' free space (the simulator itself changes only the datastore list).
//   - Storage DRS rules and latency (sdrs.go).
//   - DatastoreEnterMaintenanceMode (refused with ResourceInUse while a disk is on the datastore)
//     and DatastoreExitMaintenanceMode_Task, setting summary.maintenanceMode (not implemented there).
//   - Several clusters (xvc.go): the datastores are mounted alike in every cluster (the last
//     -partial-datastores on the first half of each cluster's hosts). -evc MODE sets each
//     cluster's summary.currentEVCModeKey and its hosts' summary.currentEVCModeKey, -host-evc MODE
//     (default: -evc) the hosts' summary.maxEVCModeKey, a CPU of that mode's vendor
//     (hardware.cpuPkg[].vendor and description, summary.hardware.cpuModel) and each powered-on
//     VM's runtime.minRequiredEVCModeKey (the cluster's mode, else the host's); a list a,b gives
//     cluster k item k mod 2. capability.supportedEVCMode lists vSphere 8's EVC modes (vendorTier
//     their order). -host-networks a,b gives every host those networks in place of the
//     simulator's (VM Network, the DVS port group DC0_DVPG0 and its uplinks) and puts every VM's
//     card on the first; a,b;c gives cluster k group k mod 2. Every network's host and VM lists
//     are filled (the simulator leaves a standard network's empty). content.about.instanceUuid
//     is drawn per instance (0.24 serves the same fixed one from every instance).
//   - Relocations as vCenter checks them (the simulator checks nothing and panics on a
//     reference that names nothing): a reference to no object is a ManagedObjectNotFound fault; a
//     task error (InvalidArgument, InvalidHostState, HostNotConnected, InvalidDatastore,
//     InvalidDeviceBacking, FeatureRequirementsNotMet, with a message saying why) for a host of
//     another cluster without a pool of that cluster, a pool of another cluster than the host's,
//     a pool of another cluster without a host, a new host in maintenance mode, standby or not
//     connected, a disk's datastore the host does not mount, a card's network the host lacks
//     (spec.deviceChange may move a card to another network), an EVC mode below the VM's. After
//     a move the hosts' and pools' VM lists follow (0.24 leaves them stale), and a move within a
//     cluster counts in its summary.numVmotions.
//   - Across vCenters: a RelocateVM_Task with spec.service logs in to the vCenter at
//     spec.service.url with its ServiceLocatorNamePassword (InvalidLogin when refused, SystemError
//     when unreachable), checks its instance UUID (InvalidArgument), spec.folder, spec.pool,
//     spec.host (default: the first host of the pool's cluster that fits), spec.datastore or the
//     disk locators (references there), the networks by name, the EVC mode, and that no VM there
//     has the name (DuplicateName); then it creates the VM there (name, CPUs, memory, BIOS and
//     instance UUIDs, disks of the same sizes on the target datastores, cards with their MAC
//     addresses), powers it on if it ran, and powers off and destroys it here. A refusal changes
//     neither vCenter. The relocation log names the target's host and datastores and gives
//     target_vcenter; a refused relocation has failed and its error message.
//   - Relocation tasks of the launcher are named RelocateVM_Task (pyVim's WaitForTask cannot read
//     the simulator's "relocateVm" while the task runs).
//
// Login accepts only -user / -password (default user / pass). Flags: see -h.
package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io/ioutil"
	"log"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/simulator/esx"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/types"
)

type relocation struct {
	VM        string   `json:"vm"`
	Source    string   `json:"source"`
	Target    string   `json:"target"`
	Datastore string   `json:"datastore,omitempty"`
	Disks     []string `json:"disks,omitempty"`
	Start     int64    `json:"start_ns"`
	End       int64    `json:"end_ns"`
	Failed    bool     `json:"failed"`
	Cancelled bool     `json:"cancelled,omitempty"` // ended by a CancelTask the launcher honoured (hold?cancel=1)
	Task      string   `json:"task,omitempty"`      // the task's managed object id
	Error     string   `json:"error,omitempty"`
	// TargetVCenter is spec.service.url of a move to another vCenter.
	TargetVCenter string `json:"target_vcenter,omitempty"`
}

type stats struct {
	mu          sync.Mutex
	requests    int
	methods     map[string]int
	relocations []relocation
	failVMs     map[string]bool
	held        *hold                    // not nil: relocation tasks started now wait for it to be released (/_vcsim/release)
	holdAfter   int                      // relocations still to go through before the hold takes effect
	cancels     map[string]chan struct{} // held relocation tasks that honour CancelTask, by task id
	downUntil   time.Time                // SOAP requests before then find the connection closed (/_vcsim/outage)
	dropReplies int                      // RelocateVM_Task calls still to be carried out with their reply lost (/_vcsim/drop-reply)
}

// discardReply stands in for the ResponseWriter of a call whose reply is lost on the network: the call is
// carried out (its task starts), and the connection is then closed without an answer.
type discardReply struct{ header http.Header }

func (d *discardReply) Header() http.Header         { return d.header }
func (d *discardReply) Write(b []byte) (int, error) { return len(b), nil }
func (d *discardReply) WriteHeader(int)             {}

// hold keeps relocation tasks running until ch is closed; fail (set before closing) ends them in an error.
type hold struct {
	ch     chan struct{}
	fail   bool
	cancel bool // CancelTask ends a held task (RequestCanceled, the VM where it was); otherwise it is ignored
}

// holding is the hold a relocation starting now waits for (nil: none). Called once per relocation.
func (s *stats) holding() *hold {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.held != nil && s.holdAfter > 0 {
		s.holdAfter--
		return nil
	}
	return s.held
}

func (s *stats) reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.requests = 0
	s.methods = map[string]int{}
	s.relocations = nil
}

func entityName(ref *types.ManagedObjectReference) string {
	if ref == nil {
		return ""
	}
	obj := simulator.Map.Get(*ref)
	if obj == nil {
		return ""
	}
	if e, ok := obj.(mo.Entity); ok {
		return e.Entity().Name
	}
	return ref.Value
}

func vmHost(ref types.ManagedObjectReference) *types.ManagedObjectReference {
	vm, ok := simulator.Map.Get(ref).(*simulator.VirtualMachine)
	if !ok {
		return nil
	}
	var host *types.ManagedObjectReference
	simulator.Map.WithLock(vm, func() {
		if vm.Runtime.Host != nil {
			h := *vm.Runtime.Host
			host = &h
		}
	})
	return host
}

const soapResponse = `<?xml version="1.0" encoding="UTF-8"?>
<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:xsd="http://www.w3.org/2001/XMLSchema" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
<soapenv:Body><%sResponse xmlns="urn:vim25"><returnval type="Task">%s</returnval></%sResponse></soapenv:Body>
</soapenv:Envelope>`

const cancelResponse = `<?xml version="1.0" encoding="UTF-8"?>
<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:xsd="http://www.w3.org/2001/XMLSchema" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
<soapenv:Body><CancelTaskResponse xmlns="urn:vim25"></CancelTaskResponse></soapenv:Body>
</soapenv:Envelope>`

const soapFault = `<?xml version="1.0" encoding="UTF-8"?>
<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:xsd="http://www.w3.org/2001/XMLSchema" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
<soapenv:Body><soapenv:Fault><faultcode>ServerFaultCode</faultcode><faultstring>%s</faultstring><detail><ManagedObjectNotFoundFault xmlns="urn:vim25" xsi:type="ManagedObjectNotFound"><obj type="%s">%s</obj></ManagedObjectNotFoundFault></detail></soapenv:Fault></soapenv:Body>
</soapenv:Envelope>`

// hostPower serves PowerDownHostToStandBy_Task / PowerUpHostFromStandBy_Task.
func hostPower(w http.ResponseWriter, method string, this types.ManagedObjectReference) {
	host, ok := simulator.Map.Get(this).(*simulator.HostSystem)
	if !ok {
		w.Header().Set("Content-Type", "text/xml; charset=utf-8")
		w.WriteHeader(http.StatusInternalServerError)
		fmt.Fprintf(w, soapFault, "managed object not found: "+this.Value, this.Type, this.Value)
		return
	}
	var id string
	var state types.HostSystemPowerState
	var want types.HostSystemPowerState
	if method == "PowerDownHostToStandBy_Task" {
		id, want, state = "powerDownHostToStandBy", types.HostSystemPowerStatePoweredOn, types.HostSystemPowerStateStandBy
	} else {
		id, want, state = "powerUpHostFromStandBy", types.HostSystemPowerStateStandBy, types.HostSystemPowerStatePoweredOn
	}
	task := simulator.CreateTask(host, id, func(*simulator.Task) (types.AnyType, types.BaseMethodFault) {
		var fault types.BaseMethodFault
		simulator.Map.WithLock(host, func() {
			if host.Runtime.PowerState != want {
				fault = &types.InvalidState{}
				return
			}
			simulator.Map.Update(host, []types.PropertyChange{
				{Name: "runtime.powerState", Val: state},
				{Name: "summary.runtime.powerState", Val: state},
			})
		})
		return nil, fault
	})
	ref := task.Run()
	w.Header().Set("Content-Type", "text/xml; charset=utf-8")
	w.WriteHeader(http.StatusOK)
	fmt.Fprintf(w, soapResponse, method, ref.Value, method)
}

// storeDpmHostConfig applies a reconfigure request's per-host DPM overrides (add, edit, remove) to the
// cluster's configurationEx.dpmHostConfig, which the simulator leaves as it was.
func storeDpmHostConfig(this types.ManagedObjectReference, specs []types.ClusterDpmHostConfigSpec) {
	cluster, ok := simulator.Map.Get(this).(*simulator.ClusterComputeResource)
	if !ok {
		return
	}
	simulator.Map.WithLock(cluster, func() {
		cfg, ok := cluster.ConfigurationEx.(*types.ClusterConfigInfoEx)
		if !ok {
			return
		}
		for _, spec := range specs {
			if spec.Info == nil {
				continue
			}
			kept := cfg.DpmHostConfig[:0]
			for _, info := range cfg.DpmHostConfig {
				if info.Key != spec.Info.Key {
					kept = append(kept, info)
				}
			}
			cfg.DpmHostConfig = kept
			if spec.Operation != types.ArrayUpdateOperationRemove {
				cfg.DpmHostConfig = append(cfg.DpmHostConfig, *spec.Info)
			}
		}
	})
}

// storeDasConfig merges a reconfigure request's dasConfig into the cluster's configurationEx.
func storeDasConfig(this types.ManagedObjectReference, das *types.ClusterDasConfigInfo) {
	cluster, ok := simulator.Map.Get(this).(*simulator.ClusterComputeResource)
	if !ok || das == nil {
		return
	}
	simulator.Map.WithLock(cluster, func() {
		cfg, ok := cluster.ConfigurationEx.(*types.ClusterConfigInfoEx)
		if !ok {
			return
		}
		if das.Enabled != nil {
			cfg.DasConfig.Enabled = das.Enabled
		}
		if das.AdmissionControlEnabled != nil {
			cfg.DasConfig.AdmissionControlEnabled = das.AdmissionControlEnabled
		}
		if das.AdmissionControlPolicy != nil {
			cfg.DasConfig.AdmissionControlPolicy = das.AdmissionControlPolicy
		}
		if das.FailoverLevel != 0 {
			cfg.DasConfig.FailoverLevel = das.FailoverLevel
		}
	})
}

// slowRelocate answers a RelocateVM_Task at once with a task that runs for delay (and, when held
// is not nil, until it is closed) before it relocates the VM, as a real vMotion does (the SOAP call
// returns; the task takes minutes). The relocation is logged when the task ends.
func slowRelocate(w http.ResponseWriter, this types.ManagedObjectReference, spec types.VirtualMachineRelocateSpec,
	delay time.Duration, held *hold, st *stats, rec relocation) bool {
	vm, ok := simulator.Map.Get(this).(*simulator.VirtualMachine)
	if !ok {
		return false
	}
	var cancel chan struct{}
	var task *simulator.Task
	task = simulator.CreateTask(vm, relocateTaskName, func(*simulator.Task) (types.AnyType, types.BaseMethodFault) {
		time.Sleep(delay)
		if held != nil {
			select {
			case <-held.ch:
			case <-cancel: // nil unless held.cancel: never ready
				rec.Failed, rec.Cancelled, rec.End = true, true, time.Now().UnixNano()
				st.mu.Lock()
				st.relocations = append(st.relocations, rec)
				delete(st.cancels, task.Self.Value)
				st.mu.Unlock()
				return nil, &types.RequestCanceled{}
			}
			if held.fail {
				rec.Failed, rec.End = true, time.Now().UnixNano()
				st.mu.Lock()
				st.relocations = append(st.relocations, rec)
				st.mu.Unlock()
				return nil, &types.InsufficientResourcesFault{}
			}
		}
		before := placementOf(vm.Self)
		moveDisks(vm, spec)
		var changes []types.PropertyChange
		if spec.Pool != nil {
			pool := *spec.Pool
			changes = append(changes, types.PropertyChange{Name: "resourcePool", Val: &pool})
		}
		if spec.Host != nil {
			h := *spec.Host
			changes = append(changes,
				types.PropertyChange{Name: "runtime.host", Val: &h},
				types.PropertyChange{Name: "summary.runtime.host", Val: &h})
		}
		simulator.Map.WithLock(vm, func() { simulator.Map.Update(vm, changes) })
		fixPlacement(vm.Self, before)
		rec.End = time.Now().UnixNano()
		st.mu.Lock()
		st.relocations = append(st.relocations, rec)
		st.mu.Unlock()
		return nil, nil
	})
	rec.Task = task.Self.Value
	if held != nil && held.cancel {
		cancel = make(chan struct{})
		st.mu.Lock()
		st.cancels[task.Self.Value] = cancel
		st.mu.Unlock()
	}
	go task.Run()
	w.Header().Set("Content-Type", "text/xml; charset=utf-8")
	w.WriteHeader(http.StatusOK)
	fmt.Fprintf(w, soapResponse, "RelocateVM_Task", task.Self.Value, "RelocateVM_Task")
	return true
}

func datastoreName(ref types.ManagedObjectReference) string {
	if ds, ok := simulator.Map.Get(ref).(*simulator.Datastore); ok {
		return ds.Name
	}
	return ""
}

func diskBytes(disk *types.VirtualDisk) int64 {
	if disk.CapacityInBytes > 0 {
		return disk.CapacityInBytes
	}
	return disk.CapacityInKB * 1024
}

// moveDisks carries out the storage part of a relocation: each disk with a locator goes to its
// datastore, every other disk and the VM's home to spec.Datastore when it is set.
func moveDisks(vm *simulator.VirtualMachine, spec types.VirtualMachineRelocateSpec) {
	if spec.Datastore == nil && len(spec.Disk) == 0 {
		return
	}
	target := map[int32]types.ManagedObjectReference{}
	for _, loc := range spec.Disk {
		target[loc.DiskId] = loc.Datastore
	}
	delta := map[types.ManagedObjectReference]int64{}
	simulator.Map.WithLock(vm, func() {
		home := types.ManagedObjectReference{}
		if spec.Datastore != nil {
			home = *spec.Datastore
			name := datastoreName(home)
			if p := vm.Config.Files.VmPathName; strings.HasPrefix(p, "[") && name != "" {
				if i := strings.Index(p, "]"); i > 0 {
					vm.Config.Files.VmPathName = "[" + name + "]" + p[i+1:]
					vm.Summary.Config.VmPathName = vm.Config.Files.VmPathName
				}
			}
		}
		used := map[types.ManagedObjectReference]bool{}
		for _, dev := range vm.Config.Hardware.Device {
			disk, ok := dev.(*types.VirtualDisk)
			if !ok {
				continue
			}
			backing, ok := disk.Backing.(*types.VirtualDiskFlatVer2BackingInfo)
			if !ok {
				continue
			}
			ds, ok := target[disk.Key]
			if !ok && spec.Datastore != nil {
				ds, ok = home, true
			}
			if !ok || (backing.Datastore != nil && *backing.Datastore == ds) {
				if backing.Datastore != nil {
					used[*backing.Datastore] = true
				}
				continue
			}
			name := datastoreName(ds)
			if name == "" {
				continue
			}
			if backing.Datastore != nil {
				delta[*backing.Datastore] += diskBytes(disk)
			}
			delta[ds] -= diskBytes(disk)
			f := backing.FileName
			if i := strings.Index(f, "]"); strings.HasPrefix(f, "[") && i > 0 {
				f = f[i+1:]
			} else {
				f = " " + f
			}
			backing.FileName = "[" + name + "]" + f
			d := ds
			backing.Datastore = &d
			used[ds] = true
		}
		if spec.Datastore != nil {
			used[home] = true
		}
		var list []types.ManagedObjectReference
		for ref := range used {
			list = append(list, ref)
		}
		vm.Datastore = list
	})
	for ref, d := range delta {
		ds, ok := simulator.Map.Get(ref).(*simulator.Datastore)
		if !ok {
			continue
		}
		simulator.Map.WithLock(ds, func() {
			free := ds.Summary.FreeSpace + d
			if free < 0 {
				free = 0
			}
			if free > ds.Summary.Capacity {
				free = ds.Summary.Capacity
			}
			ds.Summary.FreeSpace = free
			ds.Info.GetDatastoreInfo().FreeSpace = free
		})
	}
}

// datastoreMaintenance serves DatastoreEnterMaintenanceMode (refused while a disk is on the
// datastore) and DatastoreExitMaintenanceMode_Task.
func datastoreMaintenance(w http.ResponseWriter, method string, this types.ManagedObjectReference) {
	ds, ok := simulator.Map.Get(this).(*simulator.Datastore)
	w.Header().Set("Content-Type", "text/xml; charset=utf-8")
	if !ok {
		w.WriteHeader(http.StatusInternalServerError)
		fmt.Fprintf(w, soapFault, "managed object not found: "+this.Value, this.Type, this.Value)
		return
	}
	if method == "DatastoreExitMaintenanceMode_Task" {
		task := simulator.CreateTask(ds, "datastoreExitMaintenanceMode", func(*simulator.Task) (types.AnyType, types.BaseMethodFault) {
			simulator.Map.WithLock(ds, func() { ds.Summary.MaintenanceMode = string(types.DatastoreSummaryMaintenanceModeStateNormal) })
			return nil, nil
		})
		ref := task.Run()
		w.WriteHeader(http.StatusOK)
		fmt.Fprintf(w, soapResponse, method, ref.Value, method)
		return
	}
	busy := 0
	for _, e := range simulator.Map.All("VirtualMachine") {
		vm := e.(*simulator.VirtualMachine)
		simulator.Map.WithLock(vm, func() {
			for _, dev := range vm.Config.Hardware.Device {
				if disk, ok := dev.(*types.VirtualDisk); ok {
					if b, ok := disk.Backing.(*types.VirtualDiskFlatVer2BackingInfo); ok && b.Datastore != nil && *b.Datastore == this {
						busy++
					}
				}
			}
		})
	}
	if busy > 0 {
		w.WriteHeader(http.StatusInternalServerError)
		fmt.Fprintf(w, soapInUse, fmt.Sprintf("datastore %s still holds %d disks", ds.Name, busy), ds.Name)
		return
	}
	simulator.Map.WithLock(ds, func() { ds.Summary.MaintenanceMode = "inMaintenance" })
	w.WriteHeader(http.StatusOK)
	fmt.Fprintf(w, soapPlacement, method, method)
}

const soapPlacement = `<?xml version="1.0" encoding="UTF-8"?>
<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:xsd="http://www.w3.org/2001/XMLSchema" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
<soapenv:Body><%sResponse xmlns="urn:vim25"><returnval></returnval></%sResponse></soapenv:Body>
</soapenv:Envelope>`

const soapInUse = `<?xml version="1.0" encoding="UTF-8"?>
<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:xsd="http://www.w3.org/2001/XMLSchema" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
<soapenv:Body><soapenv:Fault><faultcode>ServerFaultCode</faultcode><faultstring>%s</faultstring><detail><ResourceInUseFault xmlns="urn:vim25" xsi:type="ResourceInUse"><name>%s</name></ResourceInUseFault></detail></soapenv:Fault></soapenv:Body>
</soapenv:Envelope>`

// datastoreMounts gives, for each datastore in order, its mounts by hosts (the last partial
// datastores mounted by the first half of them only), and each host's datastores.
func datastoreMounts(stores []*simulator.Datastore, hosts []types.ManagedObjectReference, partial int) (
	[][]types.DatastoreHostMount, map[types.ManagedObjectReference][]types.ManagedObjectReference) {
	perStore := make([][]types.DatastoreHostMount, len(stores))
	perHost := map[types.ManagedObjectReference][]types.ManagedObjectReference{}
	for i, ds := range stores {
		mounted := hosts
		if i >= len(stores)-partial && len(hosts) > 1 {
			mounted = hosts[:len(hosts)/2]
		}
		for _, h := range mounted {
			perStore[i] = append(perStore[i], types.DatastoreHostMount{Key: h, MountInfo: types.HostMountInfo{
				AccessMode: string(types.HostMountModeReadWrite), Mounted: types.NewBool(true), Accessible: types.NewBool(true)}})
			perHost[h] = append(perHost[h], ds.Self)
		}
	}
	return perStore, perHost
}

// setupStorage fixes the datastores' host mounts, and sets their sizes, the VMs' disk sizes and
// the datastore cluster (see the flags).
func setupStorage(cluster *simulator.ClusterComputeResource, partial int, capacityGB, freeGB, diskGB float64, pod, stockMounts bool) {
	var stores []*simulator.Datastore
	for _, e := range simulator.Map.All("Datastore") {
		stores = append(stores, e.(*simulator.Datastore))
	}
	sort.Slice(stores, func(i, j int) bool { return stores[i].Name < stores[j].Name })
	hosts := cluster.Host
	perStore, mounts := datastoreMounts(stores, hosts, partial)
	for i, ds := range stores {
		list := perStore[i]
		const gb = 1024 * 1024 * 1024
		simulator.Map.WithLock(ds, func() {
			if !stockMounts { // stock: Datastore.host names the last host only; HostSystem.datastore has them all
				ds.Host = list
			}
			if capacityGB > 0 {
				ds.Summary.Capacity = int64(capacityGB * gb)
				ds.Info.GetDatastoreInfo().MaxFileSize = ds.Summary.Capacity
			}
			if freeGB >= 0 {
				ds.Summary.FreeSpace = int64(freeGB * gb)
			}
			if ds.Summary.FreeSpace > ds.Summary.Capacity {
				ds.Summary.FreeSpace = ds.Summary.Capacity
			}
			ds.Info.GetDatastoreInfo().FreeSpace = ds.Summary.FreeSpace
		})
	}
	for _, h := range hosts {
		host := simulator.Map.Get(h).(*simulator.HostSystem)
		list := mounts[h]
		simulator.Map.WithLock(host, func() { host.Datastore = list })
	}
	var all []types.ManagedObjectReference
	for _, ds := range stores {
		all = append(all, ds.Self)
	}
	simulator.Map.WithLock(cluster, func() { cluster.Datastore = all })
	if diskGB > 0 {
		for _, e := range simulator.Map.All("VirtualMachine") {
			vm := e.(*simulator.VirtualMachine)
			simulator.Map.WithLock(vm, func() {
				for _, dev := range vm.Config.Hardware.Device {
					if disk, ok := dev.(*types.VirtualDisk); ok {
						disk.CapacityInKB = int64(diskGB * 1024 * 1024)
						disk.CapacityInBytes = disk.CapacityInKB * 1024
					}
				}
			})
		}
	}
	if pod {
		for _, e := range simulator.Map.All("StoragePod") {
			p := e.(*simulator.StoragePod)
			ctx := &simulator.Context{}
			p.MoveIntoFolderTask(ctx, &types.MoveIntoFolder_Task{This: p.Self, List: all})
			defaultPodConfig(p)
			break
		}
	}
}

// failRelocate answers a RelocateVM_Task with a task that ends in an error; the task's id.
func failRelocate(w http.ResponseWriter, this types.ManagedObjectReference) string {
	vm := simulator.Map.Get(this)
	task := simulator.CreateTask(vm, relocateTaskName, func(*simulator.Task) (types.AnyType, types.BaseMethodFault) {
		return nil, &types.InsufficientResourcesFault{}
	})
	ref := task.Run()
	w.Header().Set("Content-Type", "text/xml; charset=utf-8")
	w.WriteHeader(http.StatusOK)
	fmt.Fprintf(w, soapResponse, "RelocateVM_Task", ref.Value, "RelocateVM_Task")
	return ref.Value
}

func wrap(next http.Handler, st *stats, sdkPath string, taskDelay time.Duration, rel *relocator) http.Handler {
	typeFunc := types.TypeFunc()
	latency := latencies() // sdrs.go
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/_vcsim/stats":
			st.mu.Lock()
			out, _ := json.Marshal(map[string]interface{}{
				"requests":    st.requests,
				"methods":     st.methods,
				"relocations": st.relocations,
			})
			st.mu.Unlock()
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write(out)
			return
		case "/_vcsim/reset":
			st.reset()
			w.WriteHeader(http.StatusNoContent)
			return
		case "/_vcsim/fail":
			st.mu.Lock()
			st.failVMs[r.URL.Query().Get("vm")] = true
			st.mu.Unlock()
			w.WriteHeader(http.StatusNoContent)
			return
		case "/_vcsim/hold", "/_vcsim/release":
			st.mu.Lock()
			if r.URL.Path == "/_vcsim/hold" && st.held == nil {
				st.held = &hold{ch: make(chan struct{}), cancel: r.URL.Query().Get("cancel") == "1"}
				st.holdAfter = 0
				fmt.Sscan(r.URL.Query().Get("after"), &st.holdAfter)
			} else if r.URL.Path == "/_vcsim/release" && st.held != nil {
				st.held.fail = r.URL.Query().Get("fail") == "1"
				close(st.held.ch) // the held tasks go on (or fail)
				st.held = nil
			}
			st.mu.Unlock()
			w.WriteHeader(http.StatusNoContent)
			return
		case "/_vcsim/drop-reply":
			st.mu.Lock()
			st.dropReplies = 1
			fmt.Sscan(r.URL.Query().Get("n"), &st.dropReplies)
			st.mu.Unlock()
			w.WriteHeader(http.StatusNoContent)
			return
		case "/_vcsim/outage":
			var ms int
			fmt.Sscan(r.URL.Query().Get("ms"), &ms)
			st.mu.Lock()
			st.downUntil = time.Now().Add(time.Duration(ms) * time.Millisecond)
			st.mu.Unlock()
			w.WriteHeader(http.StatusNoContent)
			return
		}
		if r.URL.Path != sdkPath || r.Method != http.MethodPost {
			next.ServeHTTP(w, r)
			return
		}
		st.mu.Lock()
		down := time.Now().Before(st.downUntil)
		st.mu.Unlock()
		if down { // vCenter unreachable: the connection is closed without an answer (its tasks go on)
			if hj, ok := w.(http.Hijacker); ok {
				if conn, _, err := hj.Hijack(); err == nil {
					_ = conn.Close()
					return
				}
			}
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		body, err := ioutil.ReadAll(r.Body)
		_ = r.Body.Close()
		if err != nil {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		r.Body = ioutil.NopCloser(bytes.NewReader(body))
		method, err := simulator.UnmarshalBody(typeFunc, body)
		name := "?"
		if err == nil {
			name = method.Name
		}
		st.mu.Lock()
		st.requests++
		st.methods[name]++
		st.mu.Unlock()
		if err != nil {
			next.ServeHTTP(w, r)
			return
		}
		switch name {
		case "PowerDownHostToStandBy_Task", "PowerUpHostFromStandBy_Task":
			hostPower(w, name, method.This)
			return
		case "CancelTask":
			st.mu.Lock()
			ch, ok := st.cancels[method.This.Value]
			if ok {
				delete(st.cancels, method.This.Value)
			}
			st.mu.Unlock()
			if ok { // a held task that honours it: it ends in RequestCanceled
				close(ch)
				w.Header().Set("Content-Type", "text/xml; charset=utf-8")
				w.WriteHeader(http.StatusOK)
				fmt.Fprint(w, cancelResponse)
				return
			} // otherwise the simulator's answer: it has no CancelTask (the task goes on)
		case "ReconfigureComputeResource_Task":
			if req, ok := method.Body.(*types.ReconfigureComputeResource_Task); ok {
				if spec, ok := req.Spec.(*types.ClusterConfigSpecEx); ok && spec.DasConfig != nil {
					storeDasConfig(method.This, spec.DasConfig)
				}
				if spec, ok := req.Spec.(*types.ClusterConfigSpecEx); ok && len(spec.DpmHostConfigSpec) > 0 {
					storeDpmHostConfig(method.This, spec.DpmHostConfigSpec)
				}
			}
		case "QueryPerf":
			if queryPerf(w, method.This, method.Body, latency) { // sdrs.go
				return
			}
		case "ConfigureStorageDrsForPod_Task":
			if configureStorageDrs(w, method.Body) { // sdrs.go
				return
			}
		case "DatastoreEnterMaintenanceMode", "DatastoreExitMaintenanceMode_Task":
			datastoreMaintenance(w, name, method.This)
			return
		case "RelocateVM_Task":
			req, ok := method.Body.(*types.RelocateVM_Task)
			if !ok {
				break
			}
			st.mu.Lock()
			drop := st.dropReplies > 0
			if drop {
				st.dropReplies--
			}
			st.mu.Unlock()
			if drop { // carried out, its reply lost: the connection is closed once the task has started
				orig := w
				w = &discardReply{header: http.Header{}}
				defer func() {
					if hj, ok := orig.(http.Hijacker); ok {
						if conn, _, err := hj.Hijack(); err == nil {
							_ = conn.Close()
						}
					}
				}()
			}
			rec := relocation{
				VM:     entityName(&method.This),
				Source: entityName(vmHost(method.This)),
				Target: entityName(req.Spec.Host),
				Start:  time.Now().UnixNano(),
			}
			if req.Spec.Datastore != nil {
				rec.Datastore = datastoreName(*req.Spec.Datastore)
			}
			for _, loc := range req.Spec.Disk {
				rec.Disks = append(rec.Disks, fmt.Sprintf("%d:%s", loc.DiskId, datastoreName(loc.Datastore)))
			}
			storage := req.Spec.Datastore != nil || len(req.Spec.Disk) > 0
			st.mu.Lock()
			fail := rec.VM != "" && st.failVMs[rec.VM]
			delete(st.failVMs, rec.VM)
			st.mu.Unlock()
			if fail {
				rec.Task = failRelocate(w, method.This)
				rec.Failed = true
			} else if rel.relocate(w, method.This, req.Spec, taskDelay, st, rec) {
				return // another vCenter, or refused: logged when its task ends
			} else if held := st.holding(); (taskDelay > 0 || storage || held != nil) &&
				slowRelocate(w, method.This, req.Spec, taskDelay, held, st, rec) {
				return // logged when its task ends
			} else {
				before := placementOf(method.This)
				next.ServeHTTP(w, r)
				fixPlacement(method.This, before)
			}
			rec.End = time.Now().UnixNano()
			st.mu.Lock()
			st.relocations = append(st.relocations, rec)
			st.mu.Unlock()
			return
		}
		next.ServeHTTP(w, r)
	})
}

// placeRoundRobin puts VM i on host i mod len(hosts) (the simulator places VMs at random).
func placeRoundRobin(cluster *simulator.ClusterComputeResource) {
	hosts := cluster.Host
	var vms []*simulator.VirtualMachine
	for _, e := range simulator.Map.All("VirtualMachine") {
		vms = append(vms, e.(*simulator.VirtualMachine))
	}
	// Map.All has no stable order: sort by name (VM names end in a number: DC0_C0_RP0_VM12).
	byName := map[string]*simulator.VirtualMachine{}
	for _, vm := range vms {
		byName[vm.Name] = vm
	}
	lists := make(map[types.ManagedObjectReference][]types.ManagedObjectReference)
	i := 0
	for n := 0; n < len(vms); n++ {
		vm, ok := byName[fmt.Sprintf("%s_RP0_VM%d", cluster.Name, n)]
		if !ok {
			continue
		}
		ref := hosts[i%len(hosts)]
		i++
		h := ref
		simulator.Map.Update(vm, []types.PropertyChange{
			{Name: "runtime.host", Val: &h},
			{Name: "summary.runtime.host", Val: &h},
		})
		lists[ref] = append(lists[ref], vm.Self)
	}
	for _, ref := range hosts {
		host := simulator.Map.Get(ref).(*simulator.HostSystem)
		host.Vm = lists[ref]
	}
}

func main() {
	port := flag.Int("port", 0, "TCP port on 127.0.0.1 (0: any free port)")
	clusters := flag.Int("clusters", 1, "clusters DC0_C0..DC0_C{N-1}, each with -hosts hosts and their VMs")
	hosts := flag.Int("hosts", 3, "hosts in each cluster")
	vmsPerHost := flag.Int("vms-per-host", 2, "powered-on VMs per host")
	namePrefix := flag.String("name-prefix", "", "prefix of every VM's and host's name")
	evc := flag.String("evc", "", "EVC mode of the clusters (summary.currentEVCModeKey); a,b: cluster k gets item k mod 2")
	hostEVC := flag.String("host-evc", "", "EVC mode the hosts offer (summary.maxEVCModeKey; default: -evc), a list as -evc")
	hostNetworks := flag.String("host-networks", "",
		"networks of every host, VMs on the first (default: VM Network); a,b;c: cluster k gets group k mod 2")
	xvcTimeout := flag.Duration("xvc-timeout", 60*time.Second, "time a move to another vCenter may take there")
	cpuMhz := flag.Int("host-cpu-mhz", 2294, "host CPU MHz per core")
	cores := flag.Int("host-cores", 2, "host CPU cores")
	memMB := flag.Int64("host-mem-mb", 4096, "host memory in MB")
	relocateMs := flag.Int("relocate-ms", 0, "extra milliseconds every RelocateVM_Task call takes")
	relocateTaskMs := flag.Int("relocate-task-ms", 0,
		"milliseconds every RelocateVM_Task's task runs (the call itself returns at once)")
	datastores := flag.Int("datastores", 1, "datastores (LocalDS_0..), every VM's disk on LocalDS_0")
	partial := flag.Int("partial-datastores", 0, "the last N datastores are mounted by the first half of the hosts only")
	stockMounts := flag.Bool("stock-mounts", false, "leave each datastore's host list as the stock simulator fills it (the last host only); the hosts' own datastore lists name them all, as on a real vCenter")
	pod := flag.Bool("pod", false, "put the datastores in a datastore cluster (StoragePod DC0_POD0)")
	datastoreGB := flag.Float64("datastore-gb", 0, "capacity of each datastore in GB (0: the file system's)")
	datastoreFreeGB := flag.Float64("datastore-free-gb", -1, "free space of each datastore in GB (-1: the file system's)")
	diskGB := flag.Float64("disk-gb", 0, "size of every VM's disk in GB (0: the simulator's 1 MB)")
	user := flag.String("user", "user", "user name accepted by Login")
	password := flag.String("password", "pass", "password accepted by Login")
	flag.Parse()
	if *clusters < 1 || *hosts < 1 || *vmsPerHost < 0 || *cpuMhz < 1 || *cores < 1 || *memMB < 1 {
		log.Fatal("clusters, hosts, host-cpu-mhz, host-cores and host-mem-mb must be at least 1, vms-per-host at least 0")
	}

	// Host hardware template used by the simulator for every new host.
	esx.HostSystem.Summary.Hardware.CpuMhz = int32(*cpuMhz)
	esx.HostSystem.Summary.Hardware.NumCpuCores = int16(*cores)
	esx.HostSystem.Summary.Hardware.NumCpuThreads = int16(2 * *cores)
	esx.HostSystem.Summary.Hardware.MemorySize = *memMB * 1024 * 1024
	esx.HostHardwareInfo.CpuInfo.NumCpuCores = int16(*cores)
	esx.HostHardwareInfo.CpuInfo.NumCpuThreads = int16(2 * *cores)
	esx.HostHardwareInfo.CpuInfo.Hz = int64(*cpuMhz) * 1000 * 1000
	esx.HostHardwareInfo.MemorySize = *memMB * 1024 * 1024

	setupVMMemory()

	m := simulator.VPX()
	m.Host = 0 // no standalone host: the cluster is the whole inventory
	m.Cluster = *clusters
	m.ClusterHost = *hosts
	m.Machine = *hosts * *vmsPerHost
	m.Datastore = *datastores
	if *pod {
		m.Pod = 1
	}
	if *relocateMs > 0 {
		m.DelayConfig.MethodDelay = map[string]int{"RelocateVM_Task": *relocateMs}
	}
	if err := m.Create(); err != nil {
		log.Fatalf("creating the simulated inventory: %s", err)
	}
	defer m.Remove()

	all := clustersByName()
	for _, c := range all {
		placeRoundRobin(c)
	}
	setupStorage(all[0], *partial, *datastoreGB, *datastoreFreeGB, *diskGB, *pod, *stockMounts)
	setupWake(*hostWake) // before setupInventory: the names are the simulator's own
	setupInventory(all, inventoryOptions{namePrefix: *namePrefix, evc: splitList(*evc), hostEVC: splitList(*hostEVC),
		hostNetworks: splitGroups(*hostNetworks), partial: *partial})

	// An explicit user makes the simulator check the password (with its default it accepts any).
	m.Service.Listen = &url.URL{Host: fmt.Sprintf("127.0.0.1:%d", *port), User: url.UserPassword(*user, *password)}
	srv := m.Service.NewServer()
	st := &stats{methods: map[string]int{}, failVMs: map[string]bool{}, cancels: map[string]chan struct{}{}}
	rel := &relocator{inner: srv.Server.Config.Handler, sdk: *srv.URL, user: *user, password: *password, timeout: *xvcTimeout}
	srv.Server.Config.Handler = wrap(srv.Server.Config.Handler, st, srv.URL.Path,
		time.Duration(*relocateTaskMs)*time.Millisecond, rel)

	u := *srv.URL
	u.User = nil
	fmt.Println(u.String())
	os.Stdout.Sync()

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	<-sig
	srv.Close()
}
