package main

// Storage DRS additions to the launcher:
//
//   - ConfigureStorageDrsForPod_Task: the simulator of govmomi 0.24 stores only
//     podConfigSpec.enabled and defaultVmBehavior, in a task whose entity is the
//     StorageResourceManager (pyVmomi refuses to read it: not a ManagedEntity). The layer in front
//     (wrap) serves it instead, in a task on the pod, storing in the pod's
//     podStorageDrsEntry.storageDrsConfig podConfigSpec.enabled, ioLoadBalanceEnabled,
//     defaultVmBehavior, defaultIntraVmAffinity, spaceLoadBalanceConfig, ioLoadBalanceConfig and rule
//     (add, edit, remove: a rule without a key gets one), and vmConfigSpec (add, edit, remove by VM).
//   - A pod's settings at creation: the simulator sets only enabled; -pod gives DC0_POD0 the
//     settings vCenter gives a new datastore cluster (I/O metric on, 80 % space threshold, 5 %
//     minimum difference, 15 ms latency threshold, VMDKs kept together), fully automated
//     (defaultPodConfig).
//   - Datastore latency: the simulator's QueryPerf answers a host's datastore counters
//     (datastore.totalReadLatency.average, totalWriteLatency.average) with zeros under the
//     instance asked for ("*"), so a collector learns no datastore's latency. With
//     -datastore-latency-ms NAME=MS,... the layer in front answers QueryPerf itself: the
//     simulator's series for everything else, and for those counters of a host one series per
//     named datastore the host mounts, instance the datastore's id (the last part of its
//     summary.url, as vCenter's), every sample MS.

import (
	"bytes"
	"flag"
	"fmt"
	"log"
	"math"
	"net/http"
	"strconv"
	"strings"

	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25/methods"
	"github.com/vmware/govmomi/vim25/types"
	"github.com/vmware/govmomi/vim25/xml"
)

var datastoreLatency = flag.String("datastore-latency-ms", "",
	"NAME=MS,...: QueryPerf reports datastore NAME's read and write latency as MS on every host mounting it")

// configureStorageDrs serves ConfigureStorageDrsForPod_Task: the spec's pod settings, rules and VM
// settings go into the pod's storageDrsConfig, in a task on the pod (the simulator's own task is on
// the StorageResourceManager, which pyVmomi cannot read as a task's entity).
func configureStorageDrs(w http.ResponseWriter, body interface{}) bool {
	req, ok := body.(*types.ConfigureStorageDrsForPod_Task)
	if !ok {
		return false
	}
	pod, ok := simulator.Map.Get(req.Pod).(*simulator.StoragePod)
	if !ok {
		w.Header().Set("Content-Type", "text/xml; charset=utf-8")
		w.WriteHeader(http.StatusInternalServerError)
		fmt.Fprintf(w, soapFault, "managed object not found: "+req.Pod.Value, req.Pod.Type, req.Pod.Value)
		return true
	}
	task := simulator.CreateTask(pod, "configureStorageDrsForPod", func(*simulator.Task) (types.AnyType, types.BaseMethodFault) {
		simulator.Map.WithLock(pod, func() {
			if pod.PodStorageDrsEntry == nil {
				pod.PodStorageDrsEntry = new(types.PodStorageDrsEntry)
			}
			cfg := &pod.PodStorageDrsEntry.StorageDrsConfig
			if s := req.Spec.PodConfigSpec; s != nil {
				if s.Enabled != nil {
					cfg.PodConfig.Enabled = *s.Enabled
				}
				if s.IoLoadBalanceEnabled != nil {
					cfg.PodConfig.IoLoadBalanceEnabled = *s.IoLoadBalanceEnabled
				}
				if s.DefaultVmBehavior != "" {
					cfg.PodConfig.DefaultVmBehavior = s.DefaultVmBehavior
				}
				if s.DefaultIntraVmAffinity != nil {
					v := *s.DefaultIntraVmAffinity
					cfg.PodConfig.DefaultIntraVmAffinity = &v
				}
				if s.SpaceLoadBalanceConfig != nil {
					v := *s.SpaceLoadBalanceConfig
					cfg.PodConfig.SpaceLoadBalanceConfig = &v
				}
				if s.IoLoadBalanceConfig != nil {
					v := *s.IoLoadBalanceConfig
					cfg.PodConfig.IoLoadBalanceConfig = &v
				}
				for _, r := range s.Rule {
					cfg.PodConfig.Rule = updateRules(cfg.PodConfig.Rule, r)
				}
			}
			for _, v := range req.Spec.VmConfigSpec {
				cfg.VmConfig = updateVMConfig(cfg.VmConfig, v)
			}
		})
		return nil, nil
	})
	ref := task.Run()
	w.Header().Set("Content-Type", "text/xml; charset=utf-8")
	w.WriteHeader(http.StatusOK)
	fmt.Fprintf(w, soapResponse, "ConfigureStorageDrsForPod_Task", ref.Value, "ConfigureStorageDrsForPod_Task")
	return true
}

// defaultPodConfig gives a pod the Storage DRS settings of a new datastore cluster, fully automated.
func defaultPodConfig(pod *simulator.StoragePod) {
	if pod.PodStorageDrsEntry == nil {
		pod.PodStorageDrsEntry = new(types.PodStorageDrsEntry)
	}
	together := true
	cfg := &pod.PodStorageDrsEntry.StorageDrsConfig.PodConfig
	cfg.Enabled = true
	cfg.IoLoadBalanceEnabled = true
	cfg.DefaultVmBehavior = "automated"
	cfg.DefaultIntraVmAffinity = &together
	cfg.SpaceLoadBalanceConfig = &types.StorageDrsSpaceLoadBalanceConfig{
		SpaceThresholdMode: "utilization", SpaceUtilizationThreshold: 80, MinSpaceUtilizationDifference: 5}
	cfg.IoLoadBalanceConfig = &types.StorageDrsIoLoadBalanceConfig{IoLatencyThreshold: 15}
}

func updateRules(rules []types.BaseClusterRuleInfo, spec types.ClusterRuleSpec) []types.BaseClusterRuleInfo {
	switch spec.Operation {
	case types.ArrayUpdateOperationRemove:
		key, _ := spec.RemoveKey.(int32)
		var out []types.BaseClusterRuleInfo
		for _, r := range rules {
			if r.GetClusterRuleInfo().Key != key {
				out = append(out, r)
			}
		}
		return out
	case types.ArrayUpdateOperationEdit:
		if spec.Info == nil {
			return rules
		}
		for i, r := range rules {
			if r.GetClusterRuleInfo().Key == spec.Info.GetClusterRuleInfo().Key {
				rules[i] = spec.Info
			}
		}
		return rules
	default: // add
		if spec.Info == nil {
			return rules
		}
		info := spec.Info.GetClusterRuleInfo()
		if info.Key == 0 {
			next := int32(1)
			for _, r := range rules {
				if k := r.GetClusterRuleInfo().Key; k >= next {
					next = k + 1
				}
			}
			info.Key = next
		}
		return append(rules, spec.Info)
	}
}

func updateVMConfig(list []types.StorageDrsVmConfigInfo, spec types.StorageDrsVmConfigSpec) []types.StorageDrsVmConfigInfo {
	if spec.Operation == types.ArrayUpdateOperationRemove {
		ref, _ := spec.RemoveKey.(types.ManagedObjectReference)
		var out []types.StorageDrsVmConfigInfo
		for _, c := range list {
			if c.Vm == nil || *c.Vm != ref {
				out = append(out, c)
			}
		}
		return out
	}
	if spec.Info == nil || spec.Info.Vm == nil {
		return list
	}
	for i, c := range list {
		if c.Vm != nil && *c.Vm == *spec.Info.Vm {
			list[i] = *spec.Info
			return list
		}
	}
	return append(list, *spec.Info)
}

// latencies parses -datastore-latency-ms: datastore name -> milliseconds.
func latencies() map[string]int64 {
	out := map[string]int64{}
	for _, item := range splitList(*datastoreLatency) {
		kv := strings.SplitN(item, "=", 2)
		if len(kv) != 2 {
			log.Fatalf("-datastore-latency-ms: %q is not NAME=MS", item)
		}
		ms, err := strconv.ParseFloat(strings.TrimSpace(kv[1]), 64)
		if err != nil || ms < 0 {
			log.Fatalf("-datastore-latency-ms: %q is not NAME=MS with MS a number >= 0", item)
		}
		out[strings.TrimSpace(kv[0])] = int64(math.Round(ms))
	}
	return out
}

// datastoreInstance is the instance vCenter's datastore counters carry: the last part of the
// datastore's URL.
func datastoreInstance(ds *simulator.Datastore) string {
	u := strings.TrimRight(ds.Summary.Url, "/")
	return u[strings.LastIndex(u, "/")+1:]
}

// perfResponse encodes a QueryPerf response as the simulator does (its type is not exported).
type perfResponse struct {
	Res *types.QueryPerfResponse
}

func (r *perfResponse) MarshalXML(e *xml.Encoder, start xml.StartElement) error {
	if err := e.EncodeToken(start); err != nil {
		return err
	}
	if err := e.EncodeElement(r.Res, xml.StartElement{Name: xml.Name{Space: "urn:vim25", Local: "QueryPerfResponse"}}); err != nil {
		return err
	}
	return e.EncodeToken(start.End())
}

type perfEnvelope struct {
	XMLName xml.Name    `xml:"soapenv:Envelope"`
	Enc     string      `xml:"xmlns:soapenc,attr"`
	Env     string      `xml:"xmlns:soapenv,attr"`
	XSD     string      `xml:"xmlns:xsd,attr"`
	XSI     string      `xml:"xmlns:xsi,attr"`
	Body    interface{} `xml:"soapenv:Body"`
}

// queryPerf serves QueryPerf when -datastore-latency-ms names datastores (false: the simulator serves it).
func queryPerf(w http.ResponseWriter, this types.ManagedObjectReference, body interface{}, ms map[string]int64) bool {
	req, ok := body.(*types.QueryPerf)
	if !ok || len(ms) == 0 {
		return false
	}
	pm, ok := simulator.Map.Get(this).(*simulator.PerformanceManager)
	if !ok {
		return false
	}
	res, ok := pm.QueryPerf(nil, req).(*methods.QueryPerfBody)
	if !ok || res.Fault_ != nil || res.Res == nil {
		return false
	}
	latency := map[int32]bool{}
	for _, c := range pm.PerfCounter {
		if c.GroupInfo.GetElementDescription().Key == "datastore" && c.RollupType == types.PerfSummaryTypeAverage {
			if k := c.NameInfo.GetElementDescription().Key; k == "totalReadLatency" || k == "totalWriteLatency" {
				latency[c.Key] = true
			}
		}
	}
	for _, base := range res.Res.Returnval {
		em, ok := base.(*types.PerfEntityMetric)
		if !ok || em.Entity.Type != "HostSystem" {
			continue
		}
		host, ok := simulator.Map.Get(em.Entity).(*simulator.HostSystem)
		if !ok {
			continue
		}
		var values []types.BasePerfMetricSeries
		for _, v := range em.Value {
			id := v.GetPerfMetricSeries().Id
			if !latency[id.CounterId] {
				values = append(values, v)
				continue
			}
			for _, ref := range host.Datastore {
				ds, ok := simulator.Map.Get(ref).(*simulator.Datastore)
				if !ok {
					continue
				}
				value, named := ms[ds.Name]
				if !named || (id.Instance != "*" && id.Instance != datastoreInstance(ds)) {
					continue
				}
				series := &types.PerfMetricIntSeries{Value: make([]int64, len(em.SampleInfo))}
				series.Id = types.PerfMetricId{CounterId: id.CounterId, Instance: datastoreInstance(ds)}
				for i := range series.Value {
					series.Value[i] = value
				}
				values = append(values, series)
			}
		}
		em.Value = values
	}
	var out bytes.Buffer
	fmt.Fprint(&out, xml.Header)
	e := xml.NewEncoder(&out)
	if err := e.Encode(&perfEnvelope{
		Enc:  "http://schemas.xmlsoap.org/soap/encoding/",
		Env:  "http://schemas.xmlsoap.org/soap/envelope/",
		XSD:  "http://www.w3.org/2001/XMLSchema",
		XSI:  "http://www.w3.org/2001/XMLSchema-instance",
		Body: &perfResponse{res.Res},
	}); err != nil {
		log.Printf("encoding a QueryPerf response: %s", err)
		return false
	}
	w.Header().Set("Content-Type", "text/xml; charset=utf-8")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(out.Bytes())
	return true
}
