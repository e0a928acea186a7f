"""Connectivity problems: VPN, switching and Wi-Fi, DNS/DHCP and TLS certificates."""

from __future__ import annotations

from .scenario import Scenario

SCENARIOS: tuple[Scenario, ...] = (
    Scenario(
        key="vpn_drops",
        category="VPN",
        kb="vpn-troubleshooting",
        asset_roles=("VPN gateway",),
        client_roles=("VPN client pool",),
        subjects=(
            "VPN disconnects every few minutes",
            "{vpn_client} keeps dropping the connection",
            "Remote VPN session drops when working from home",
        ),
        bodies=(
            "Since this morning my {vpn_client} connection drops every 5-10 minutes and I have "
            "to reconnect. Teams calls freeze right before it disconnects.\n"
            "I'm working from home on my company laptop.",
            "The VPN to {ip} ({host}) keeps disconnecting. The client shows 'Connection lost, "
            "reconnecting' and my assigned address was {client_ip} before it dropped.\n"
            "This makes {app} unusable from home.",
            "VPN kicks me out roughly every 10 minutes since yesterday. Home internet is fine "
            "otherwise (streaming works). Gateway {ip}.",
        ),
        resolutions=(
            "Dead peer detection on {host} was set to 10 s and the user's home router drops idle "
            "UDP sessions. Raised the DPD interval to 60 s and enabled TCP fallback in the "
            "{vpn_client} profile. Connection stable for 2 days.",
            "The user's home router fragmented the tunnel packets. Lowered the tunnel MTU to 1380 "
            "in the {vpn_client} profile and pushed the updated profile; no further drops.",
            "Outdated {vpn_client} build with a known reconnect bug. Upgraded the client to the "
            "version approved for {host}; user confirmed a stable connection.",
        ),
        open_subjects=(
            "Remote connection to the office keeps cutting out",
            "Losing VPN while on calls from home",
        ),
        open_bodies=(
            "When I work from home the connection to the office network cuts out several times an "
            "hour, every time I'm in a Teams meeting. I connect to {ip} as usual. Reconnecting "
            "works but only for a few minutes.\nCan you take a look?",
            "My laptop keeps losing the tunnel to the office ({ip}) - it says reconnecting and "
            "then the shared drives vanish. The last address it had was {client_ip}. Started "
            "after I switched to a new home router.",
        ),
        priorities=("High", "Medium", "High"),
    ),
    Scenario(
        key="vpn_auth",
        category="VPN",
        kb="vpn-troubleshooting",
        asset_roles=("VPN gateway", "RADIUS server"),
        subjects=(
            "Cannot log in to VPN after password change",
            "VPN says credentials rejected",
            "{vpn_client} login fails - permission denied",
        ),
        bodies=(
            "I changed my password yesterday and now the {vpn_client} login says the credentials "
            "are wrong. My normal Windows login works fine.",
            "VPN login fails with an authentication error. I tried three times. The server in the "
            "client is {ip}.",
        ),
        resolutions=(
            "The client had the old password cached in the saved connection. Cleared the saved "
            "credentials in {vpn_client}; user logged in with the new password. Verified the "
            "successful authentication in the {host} log.",
            "User was no longer in the VPN-Users AD group after a department move. Added the "
            "account back to VPN-Users, waited for replication, login succeeded against {host}.",
            "RADIUS requests from the VPN gateway timed out because the shared secret had been "
            "rotated on one side only. Updated the RADIUS client secret on {host}; VPN logins "
            "work again for all affected users.",
        ),
        open_subjects=(
            "Remote access rejects my password",
            "Can't sign in to the office VPN since this morning",
        ),
        open_bodies=(
            "Since I reset my password on Monday, remote access won't accept it. The error says "
            "authentication failed. The gateway address in the app is {ip}. Outlook on my phone "
            "took the new password fine.",
            "The remote access client refuses my login ('permission denied'). I moved from Sales "
            "to Purchasing last week, not sure if that is related. Server {ip}.",
        ),
    ),
    Scenario(
        key="vpn_no_internal",
        category="VPN",
        kb="vpn-troubleshooting",
        asset_roles=("DNS server",),
        client_roles=("VPN client pool",),
        subjects=(
            "Connected to VPN but cannot open internal sites",
            "VPN connected - intranet and shares not reachable",
            "No access to internal resources over VPN",
        ),
        bodies=(
            "VPN says connected, but the intranet and file share paths time out. Internet works. "
            "ipconfig shows {client_ip}.",
            "Connected via {vpn_client}, but names like intranet.{domain} don't resolve. Pinging "
            "{ip} works though.",
        ),
        resolutions=(
            "The split-tunnel profile was missing the internal DNS server and suffix. Added {host} "
            "({ip}) as DNS server and {domain} as search suffix in the VPN profile; names resolve "
            "over VPN now.",
            "The user's home network used the same 10.x range as the office, so routes "
            "conflicted. Changed the home router LAN to 192.168.50.0/24; internal resources "
            "reachable.",
            "Stale DNS cache on the laptop. Ran ipconfig /flushdns and reconnected; intranet "
            "reachable again.",
        ),
        open_subjects=(
            "VPN is up but I can't reach the intranet or mapped drives",
            "Internal sites don't load when working remotely",
        ),
        open_bodies=(
            "The VPN client shows connected and I got address {client_ip}, but intranet.{domain} "
            "doesn't load and my drives show a red X. Pinging {ip} by address works.",
            "Working from the hotel: connected to VPN, but no internal pages load. Internet is "
            "fine. The DNS server shown is {ip}.",
        ),
    ),
    Scenario(
        key="switch_outage",
        category="Network",
        kb="network-wifi",
        asset_roles=("Core switch", "Access switch"),
        client_roles=("Wired client VLAN",),
        subjects=(
            "No network on the whole second floor",
            "Network down for several desks",
            "All PCs in the office lost network connection",
        ),
        bodies=(
            "Everyone in our area lost network at 9:40. Desk phones are also dead. The switch in "
            "the comms cabinet has amber lights.",
            "Several users report no network. My PC shows 'Unidentified network' with a 169.254 "
            "address. The last good address was {client_ip}.",
            "Network outage at {site2}: nothing works and the switch {ip} doesn't answer ping.",
        ),
        resolutions=(
            "The uplink port on {host} was err-disabled after a loop (both ends of a patch cable "
            "plugged into the floor switch). Removed the loop, re-enabled the port and enabled "
            "BPDU guard on the access ports.",
            "A power supply in {host} failed. Swapped in the spare PSU; all ports came back. "
            "Replacement ordered under warranty.",
            "Spanning-tree topology change storm caused by a rogue unmanaged switch under a desk. "
            "Removed it and enabled BPDU guard on the access ports of {host}.",
        ),
        open_subjects=(
            "Half the office has no internet or phones",
            "Desks near accounting offline since this morning",
        ),
        open_bodies=(
            "None of the PCs near accounting can reach anything and desk phones show 'no "
            "service'. Someone was moving desks yesterday and re-plugged cables. My PC had "
            "{client_ip}. The switch it connects through is {ip}.",
            "The network is dead for about 15 people. The lights on the switch ({ip}) are "
            "blinking amber very fast.",
        ),
        priorities=("Urgent", "High", "High"),
    ),
    Scenario(
        key="wifi_drops",
        category="Network",
        kb="network-wifi",
        asset_roles=("Wireless controller",),
        client_roles=("Wi-Fi client subnet",),
        subjects=(
            "Wi-Fi keeps dropping in the meeting rooms",
            "Wireless connection unstable on {wifi}",
            "Laptops disconnect from Wi-Fi",
        ),
        bodies=(
            "Wi-Fi {wifi} drops every few minutes in the large meeting room. Other rooms seem OK.",
            "My laptop loses Wi-Fi and reconnects constantly. IP was {client_ip}.",
            "Several devices lose the {wifi} network at {site2}; controller {ip}.",
        ),
        resolutions=(
            "Two access points were on the same 5 GHz channel with heavy co-channel "
            "interference. Enabled automatic channel and power assignment on {host} and moved the "
            "room AP to channel 149. The drops stopped.",
            "The laptop's Intel Wi-Fi driver was outdated and had a known roaming bug. Updated the "
            "driver to the current OEM version; stable since.",
            "The DHCP scope for the Wi-Fi subnet was full so clients failed to renew. Shortened "
            "the lease to 8 hours and extended the scope; {host} shows the clients stable.",
        ),
        open_subjects=(
            "Wireless keeps cutting out during video calls",
            "Can't stay connected to the office wireless",
        ),
        open_bodies=(
            "The wireless in the boardroom disconnects me every couple of minutes, colleagues "
            "have the same issue. My laptop shows {client_ip}. The wireless controller is {ip} "
            "according to the network diagram.",
            "My laptop shows connected to {wifi} but pages stop loading and then it reconnects. "
            "Controller {ip}. Started after the weekend.",
        ),
    ),
    Scenario(
        key="dhcp_exhausted",
        category="DNS/DHCP",
        kb="dns-dhcp",
        asset_roles=("DHCP server",),
        client_roles=("Wired client VLAN", "Wi-Fi client subnet"),
        subjects=(
            "PCs getting 169.254 address",
            "No IP address from DHCP",
            "New laptops cannot get an IP address",
        ),
        bodies=(
            "Two new PCs show 'No internet' and ipconfig gives 169.254.x.x. Other PCs work.",
            "Devices on the {wifi} Wi-Fi get no IP address. The DHCP server is {ip}.",
        ),
        resolutions=(
            "The DHCP scope on {host} was 100% used (stale leases from visitors' phones). Reduced "
            "the lease time from 8 days to 8 hours and deleted stale leases; new clients get "
            "addresses.",
            "The DHCP Server service on {host} had stopped after Windows updates. Started it and "
            "set the service recovery to restart; clients renewed.",
            "The scope was exhausted because the subnet grew. Extended the scope range on {host} "
            "and added exclusions for printers; reservations documented.",
        ),
        open_subjects=(
            "Laptop says 'no internet', ipconfig shows 169.254",
            "New starters' PCs won't connect to the network",
        ),
        open_bodies=(
            "The three new PCs we set up this morning don't get a network address - ipconfig "
            "shows 169.254.12.40. Existing PCs are fine. DHCP is on {ip} I believe.",
            "My laptop can't get an address on the office network; colleagues at {site} have the "
            "same issue since lunchtime. DHCP server {ip}.",
        ),
    ),
    Scenario(
        key="dns_failure",
        category="DNS/DHCP",
        kb="dns-dhcp",
        asset_roles=("DNS server",),
        subjects=(
            "Internal websites not resolving",
            "DNS errors when opening the intranet",
            "Server names cannot be found",
        ),
        bodies=(
            "The browser shows DNS_PROBE_FINISHED_NXDOMAIN for intranet.{domain}.",
            "nslookup intranet.{domain} times out against {ip}.",
        ),
        resolutions=(
            "The DNS Server service on {host} hung under memory pressure. Restarted the service "
            "and cleared the server cache; resolution is back.",
            "A stale conditional forwarder pointed to a decommissioned server. Removed it on "
            "{host} and forced zone replication.",
            "The client had a static DNS server (8.8.8.8) set by hand. Switched the adapter back "
            "to the DHCP-provided DNS server {ip}.",
        ),
        open_subjects=(
            "Can't open any internal pages, external sites fine",
            "Name lookups failing for internal servers",
        ),
        open_bodies=(
            "Since about 10am internal pages like intranet.{domain} say 'server not found' while "
            "public websites work. nslookup against {ip} times out.",
            "Mapped drives and the intranet fail by name but work by IP. Our DNS server is {ip}.",
        ),
    ),
    Scenario(
        key="cert_expiring",
        category="Certificates",
        kb="tls-certificates",
        asset_roles=("{portal}",),
        subjects=(
            "SSL certificate expiring soon on {portal}",
            "Certificate expiry warning for web server",
            "Monitoring alert: TLS certificate expires in 14 days",
        ),
        bodies=(
            "Monitoring: the certificate for {portal} on {ip} expires in 14 days.",
            "We got an email from the CA that the certificate for {portal} expires at the end of "
            "the month.",
        ),
        resolutions=(
            "Renewed the certificate through the CA portal (DNS validation), installed it with "
            "the full chain on {host}, updated the HTTPS binding and verified the chain with an "
            "SSL checker.",
            "Replaced the manually managed certificate with ACME auto-renewal on {host}; renewal "
            "runs every 60 days and alerts on failure.",
            "Renewed the certificate and rolled it out to {host} and the load balancer; removed "
            "the old certificate from the store.",
        ),
        open_subjects=(
            "Warning that our website certificate runs out",
            "Customers may soon see security warnings on our portal",
        ),
        open_bodies=(
            "Our uptime checker reports the HTTPS certificate on {ip} ({portal}) will expire in "
            "9 days. Please renew it before customers see errors.",
            "The browser shows the certificate for {portal} is valid only until next week. The "
            "server is {ip}.",
        ),
        priorities=("High", "Medium"),
    ),
    Scenario(
        key="cert_error",
        category="Certificates",
        kb="tls-certificates",
        asset_roles=("{portal}",),
        subjects=(
            "Browser says connection is not private on {portal}",
            "NET::ERR_CERT_DATE_INVALID on {portal}",
            "Certificate error after server update",
        ),
        bodies=(
            "Chrome shows NET::ERR_CERT_DATE_INVALID when opening https://{portal}.",
            "Some users get 'certificate not trusted' on {ip}, others don't.",
        ),
        resolutions=(
            "The certificate on {host} had expired over the weekend. Renewed it, bound the new "
            "certificate and restarted the site.",
            "The intermediate certificate was missing from the chain on {host}; installed the "
            "intermediate bundle and older clients trust the site again.",
            "The clock on {host} was two days off (time sync disabled), which broke validation on "
            "some clients. Re-enabled NTP sync with the domain controller.",
        ),
        open_subjects=(
            "Security warning when opening our portal",
            "'Your connection is not private' error",
        ),
        open_bodies=(
            "Since this morning everyone gets 'Your connection is not private' when opening "
            "https://{portal}. The server is {ip}. Clicking through works but customers are "
            "calling.",
            "Older PCs and some phones say the certificate of {portal} ({ip}) is not trusted; "
            "newer ones are fine.",
        ),
        priorities=("Urgent", "High"),
    ),
)
