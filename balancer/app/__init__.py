"""The use cases, one module each: what the command line, the service and its POST /place endpoint call.

recommend (a cluster, or a balancing domain), apply, evacuate (a host, a datastore), exit_maintenance,
place (also POST /place), history, snapshot, check_config; what they share: oneoff (which cluster a
command reads or acts on, journaled), balancing_domains (a domain's clusters collected, planned and
carried out, also by the service's domain cycles). They take plain values and return results; showing
them is the caller's.
"""
