package main

import (
	"flag"
	"log"
	"strings"

	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25/types"
)

// -host-wake "DC0_C0_H0=wol,DC0_C0_H1=ipmi,DC0_C0_H2=none": how each listed host can be woken from
// standby, as vCenter reports it in HostConfigInfo: wol sets config.wakeOnLanCapable, ipmi fills
// config.ipmi (a BMC address; vCenter never returns the password) with Wake-on-LAN reported off, none
// reports Wake-on-LAN off and no IPMI. Hosts not listed can be woken by Wake-on-LAN, as in a cluster set
// up for DPM (the stock simulator's template reports Wake-on-LAN off and no IPMI: no wake method).
var hostWake = flag.String("host-wake", "", "host=wol|ipmi|none,... how each listed host can be woken")

func setupWake(spec string) {
	for _, e := range simulator.Map.All("HostSystem") {
		host := e.(*simulator.HostSystem)
		simulator.Map.WithLock(host, func() {
			if host.Config != nil {
				host.Config.WakeOnLanCapable = types.NewBool(true)
			}
		})
	}
	for _, item := range splitList(spec) {
		name, method, ok := strings.Cut(item, "=")
		if !ok {
			log.Fatalf("-host-wake: %q is not host=method", item)
		}
		e := simulator.Map.FindByName(name, hostRefs())
		if e == nil {
			log.Fatalf("-host-wake: no host %s", name)
		}
		host := e.(*simulator.HostSystem)
		if method != "wol" && method != "ipmi" && method != "none" {
			log.Fatalf("-host-wake: %q: the method is wol, ipmi or none", item)
		}
		simulator.Map.WithLock(host, func() {
			if host.Config == nil {
				log.Fatalf("-host-wake: host %s has no config", name)
			}
			wol := method == "wol"
			host.Config.WakeOnLanCapable = &wol
			if method == "ipmi" {
				host.Config.Ipmi = &types.HostIpmiInfo{BmcIpAddress: "192.0.2.10", BmcMacAddress: "00:00:5e:00:53:01", Login: "admin"}
			}
		})
	}
}

func hostRefs() []types.ManagedObjectReference {
	var out []types.ManagedObjectReference
	for _, e := range simulator.Map.All("HostSystem") {
		out = append(out, e.Reference())
	}
	return out
}
