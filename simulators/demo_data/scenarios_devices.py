"""Devices and software at the desk: docking stations and screens, laptop power, headsets in
Teams calls, installing software and activating licences."""

from __future__ import annotations

from .scenario import Scenario

_DESK = ("Wired client VLAN",)
_ANY_CLIENT = ("Wired client VLAN", "Wi-Fi client subnet")

SCENARIOS: tuple[Scenario, ...] = (
    Scenario(
        key="display_dock",
        category="Hardware",
        kb="workplace-devices",
        asset_roles=(),
        client_roles=_DESK,
        subjects=(
            "External monitors not detected on docking station",
            "Second screen stays black when docked",
            "Dock not recognising monitors after update",
        ),
        bodies=(
            "When I put the laptop on the dock both external monitors stay black with 'no "
            "signal'. The laptop screen works. Keyboard and mouse on the dock work.",
            "Since this morning my second monitor is not detected through the docking station. "
            "Display settings only show one screen. Laptop address {client_ip}.",
        ),
        resolutions=(
            "The dock firmware was two versions behind and did not handle the new graphics "
            "driver. Updated the dock firmware with the vendor tool and reseated the USB-C "
            "cable; both monitors detected.",
            "The DisplayLink driver had been removed by a cleanup script. Reinstalled the "
            "DisplayLink driver and rebooted; the external screens came back.",
            "The USB-C cable between laptop and dock was damaged and only carried power. "
            "Replaced the cable; video over the dock works again.",
        ),
        open_subjects=(
            "Big screen stays dark when I plug in my laptop",
            "My monitors don't work with the docking thing",
        ),
        open_bodies=(
            "When I connect my laptop at the desk the two big screens say no signal. Charging "
            "works and the keyboard works. My laptop shows {client_ip} if that helps.",
            "After the update yesterday the monitors on my dock are not found anymore, only the "
            "laptop display works. Laptop {client_ip}.",
        ),
        priorities=("Medium", "Low", "Medium"),
    ),
    Scenario(
        key="laptop_power",
        category="Hardware",
        kb="workplace-devices",
        asset_roles=(),
        client_roles=_ANY_CLIENT,
        subjects=(
            "Laptop not charging",
            "Laptop battery drains within an hour",
            "Laptop does not turn on",
        ),
        bodies=(
            "My laptop shows 'plugged in, not charging' and the battery is down to 10%.",
            "The battery goes from full to empty in about an hour and the laptop gets hot. "
            "Laptop {client_ip}.",
        ),
        resolutions=(
            "The charger was a 45 W model from another laptop, too weak under load. Replaced "
            "it with the 90 W charger for this model; the battery charges again.",
            "The battery health report showed 38% of design capacity. Replaced the battery "
            "under warranty.",
            "A BIOS setting limited charging to 50% after a firmware update. Reset the battery "
            "charge threshold in the BIOS and updated the BIOS.",
        ),
        open_subjects=(
            "computer won't charge",
            "battery dies super fast",
        ),
        open_bodies=(
            "The charging light stays off and Windows says plugged in but not charging. Battery "
            "is almost empty. Laptop {client_ip}.",
            "My notebook battery is empty after an hour even though it says 100% in the "
            "morning, and it gets really warm. It is {client_ip} on the network.",
        ),
        priorities=("Medium", "High", "Low"),
    ),
    Scenario(
        key="teams_audio",
        category="Collaboration",
        kb="workplace-devices",
        asset_roles=(),
        client_roles=_ANY_CLIENT,
        subjects=(
            "Headset microphone not working in Teams",
            "Nobody can hear me in Teams calls",
            "Teams audio problems with headset",
        ),
        bodies=(
            "In Teams calls people cannot hear me although the headset mute light is off. The "
            "headset works on my phone.",
            "Teams shows my headset but the microphone level stays flat and colleagues hear "
            "nothing. Laptop {client_ip}.",
        ),
        resolutions=(
            "Teams device settings still pointed at the laptop's built-in microphone after the "
            "headset was replaced. Selected the headset for speaker and microphone in Teams and "
            "made it the Windows default; test call fine.",
            "Windows privacy settings blocked microphone access for desktop apps after an "
            "update. Re-enabled microphone access; Teams picks up the headset again.",
            "The headset firmware had a known USB audio bug. Updated the firmware with the "
            "vendor hub and replaced the USB dongle; audio clear in both directions.",
        ),
        open_subjects=(
            "people say they can't hear me on calls",
            "Mic dead in Teams meetings",
        ),
        open_bodies=(
            "In every Teams meeting my colleagues say I'm silent. The headset light is on and "
            "music plays in it. Laptop {client_ip}.",
            "Since Monday my microphone does not work in Teams calls, the little level bar "
            "never moves. Sound coming in is fine. My PC is {client_ip}.",
        ),
        priorities=("Medium", "High", "Medium"),
    ),
    Scenario(
        key="software_install",
        category="Software",
        kb="workplace-devices",
        asset_roles=(),
        client_roles=_ANY_CLIENT,
        subjects=(
            "Software installation fails - admin rights required",
            "Cannot install application from Company Portal",
            "Install of {app} client stuck",
        ),
        bodies=(
            "I need to install the new version of the {app} client but Windows asks for an "
            "administrator password.",
            "The Company Portal shows the install as 'Pending' for two days and nothing "
            "happens. PC {client_ip}.",
        ),
        resolutions=(
            "Standard users cannot install software locally. Published the approved package to "
            "the Company Portal for the user's group; the user installed it self-service.",
            "The install was stuck because an earlier attempt left a pending reboot. Rebooted, "
            "cleared the client cache and re-ran the deployment; the application installed.",
            "The device had dropped out of the management group after a rename. Re-added it "
            "to the deployment collection; the install ran within the hour.",
        ),
        open_subjects=(
            "Need a program installed, it asks for admin password",
            "Installing the new client doesn't work",
        ),
        open_bodies=(
            "I tried to install the tool my team uses but Windows asks me for an admin "
            "password which I don't have. My laptop is {client_ip}.",
            "The self-service portal has said 'installing' since Tuesday, the program never "
            "appears. Computer {client_ip}.",
        ),
        priorities=("Low", "Medium", "Low"),
    ),
    Scenario(
        key="licence_activation",
        category="Software",
        kb="workplace-devices",
        asset_roles=(),
        client_roles=_ANY_CLIENT,
        subjects=(
            "Office says unlicensed product",
            "Activation failed for Microsoft 365 apps",
            "Product activation error in Word and Excel",
        ),
        bodies=(
            "Word and Excel show a red bar 'Unlicensed product' and editing is disabled.",
            "Excel says the product could not be activated and switches to read-only mode. "
            "Laptop {client_ip}.",
        ),
        resolutions=(
            "The user had no Microsoft 365 licence assigned after moving department. Assigned "
            "the licence in the admin centre; Office activated after signing out and in.",
            "Old activation tokens from the previous user of the laptop were cached. Ran the "
            "Office licence reset tool and signed in with the user's account; activated.",
            "The shared device needed shared computer activation. Enabled it by policy and "
            "re-signed in; the apps are licensed again.",
        ),
        open_subjects=(
            "Word won't let me edit anymore",
            "Excel says something about a license",
        ),
        open_bodies=(
            "Since this morning Word and Excel say I need to activate, and I can only read "
            "documents, not edit them. Laptop {client_ip}.",
            "A yellow bar says the product is not activated and most buttons are grey. It "
            "worked last week. PC {client_ip}.",
        ),
        priorities=("Medium", "Low", "Medium"),
    ),
)
