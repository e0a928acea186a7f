"""Server-side operations: disk space, Active Directory lockouts, backups and MFA."""

from __future__ import annotations

from .scenario import Scenario

SCENARIOS: tuple[Scenario, ...] = (
    Scenario(
        key="server_disk_full",
        category="Disk Space",
        kb="disk-space",
        asset_roles=("File server", "Mail server", "Application server", "Backup server"),
        subjects=(
            "Low disk space alert on {host}",
            "C: drive almost full on server",
            "Disk space critical on {host}",
        ),
        bodies=(
            "Monitoring: C: on {host} ({ip}) is below 5% free.",
            "Server {host} reports low disk space on D:.",
        ),
        resolutions=(
            "The component store and old Windows Update files used 18 GB. Ran DISM /Online "
            "/Cleanup-Image /StartComponentCleanup and cleared SoftwareDistribution; 24% free.",
            "Application logs had grown to 40 GB. Compressed and moved logs older than 30 days "
            "and added a scheduled cleanup task on {host}.",
            "Extended the virtual disk of {host} by 50 GB and expanded the volume in Disk "
            "Management.",
        ),
        open_subjects=(
            "Server running out of storage",
            "Alert: free space below threshold on {host}",
        ),
        open_bodies=(
            "Our monitoring sent an alert that the system drive on {ip} is 97% used. Please "
            "check before services stop.",
            "Free space on {host} ({ip}) keeps dropping; 3 GB are left on C:.",
        ),
        priorities=("High", "Medium", "Urgent"),
    ),
    Scenario(
        key="pc_disk_full",
        category="Disk Space",
        kb="disk-space",
        asset_roles=(),
        client_roles=("Wired client VLAN",),
        subjects=(
            "Laptop says disk is full",
            "Not enough space to install updates",
            "C: drive red on my PC",
        ),
        bodies=(
            "Windows says low disk space and I can't save files.",
            "Cannot install updates: not enough disk space. PC {client_ip}.",
        ),
        resolutions=(
            "OneDrive had downloaded all team sites locally. Enabled Files On-Demand and freed "
            "60 GB.",
            "Ran Disk Cleanup including system files and removed old user profiles; 35 GB free.",
            "The Outlook OST had grown to 40 GB. Limited cached mode to 12 months.",
        ),
        open_subjects=(
            "No space left on my computer",
            "Can't save files, disk full warning",
        ),
        open_bodies=(
            "My PC shows the C: drive in red with only 800 MB free and Excel can't save. PC "
            "address {client_ip}.",
            "Windows keeps warning about low disk space and updates fail. My machine is "
            "{client_ip}.",
        ),
        priorities=("Low", "Medium"),
    ),
    Scenario(
        key="account_lockout",
        category="Active Directory",
        kb="account-lockouts",
        asset_roles=("Domain controller",),
        subjects=(
            "Account keeps getting locked out",
            "Repeated AD lockouts",
            "User locked out several times a day",
        ),
        bodies=(
            "My account locks every morning even though I type the right password.",
            "AD account locked again, third time today. DC {ip} shows the lockout events.",
        ),
        resolutions=(
            "Found old credentials in the mail app on the user's phone hitting ActiveSync. Traced "
            "the source with event 4740 on the PDC emulator {host}; updated the password on the "
            "phone.",
            "A persistent drive mapping on a second PC used the old password. Removed the mapping "
            "and cleared Credential Manager; no lockouts since.",
            "A scheduled task on the user's old laptop ran with their credentials. Disabled the "
            "task and retired the laptop.",
        ),
        open_subjects=(
            "Locked out of Windows again",
            "My login keeps getting blocked",
        ),
        open_bodies=(
            "I'm locked out for the third time today. I changed my password last week. The "
            "domain controller {ip} probably has the log.",
            "Every hour or so my account is locked and I have to call the helpdesk. Event logs on "
            "{host} ({ip}) might show the source.",
        ),
        priorities=("High", "Medium"),
    ),
    Scenario(
        key="service_account_locked",
        category="Active Directory",
        kb="account-lockouts",
        asset_roles=("Application server",),
        subjects=(
            "Service account locked - {app} interfaces down",
            "Service account locked out",
            "Scheduled jobs failing with logon failure",
        ),
        bodies=(
            "Nightly jobs failed with 'The referenced account is currently locked out'.",
            "The {app} integration on {ip} fails: account svc-integration is locked.",
        ),
        resolutions=(
            "Someone changed the service account password without updating the scheduled task on "
            "{host}. Updated the stored credential and unlocked the account.",
            "A decommissioned test server still used the service account with the old password. "
            "Shut it down and unlocked the account.",
            "Converted the service account to a group managed service account (gMSA) on {host} "
            "so the password rotates automatically.",
        ),
        open_subjects=(
            "Integration jobs failing - account locked",
            "Batch jobs stopped overnight",
        ),
        open_bodies=(
            "The overnight interface jobs on {ip} failed with 'account locked out'. Nothing was "
            "imported this morning.",
            "The service user for {app} keeps getting locked. Server {host} ({ip}).",
        ),
        priorities=("Urgent", "High"),
    ),
    Scenario(
        key="backup_failed",
        category="Backup",
        kb="backup-failures",
        asset_roles=("Backup server",),
        subjects=(
            "Backup job failed last night",
            "{backup}: job finished with errors",
            "Nightly backup failed - VSS error",
        ),
        bodies=(
            "Backup report: job 'Servers-Nightly' failed for 2 VMs.",
            "The backup on {ip} failed with a VSS snapshot error.",
        ),
        resolutions=(
            "The SQL VSS writer was in a failed state. Restarted the SQL Server VSS Writer "
            "service and reran the job on {host} successfully.",
            "The job credentials expired after a password rotation. Updated the credential in "
            "{backup} on {host} and retried.",
            "The snapshot failed because of a stale VM snapshot. Consolidated the disks in "
            "vSphere and reran the job.",
        ),
        open_subjects=(
            "Backup report shows failures for servers",
            "Last night's backup didn't complete",
        ),
        open_bodies=(
            "This morning's backup email says two servers failed with 'Failed to create "
            "snapshot'. The backup server is {ip}.",
            "The nightly job on {host} ({ip}) ended with errors, third night in a row.",
        ),
        priorities=("High", "Medium"),
    ),
    Scenario(
        key="backup_storage_full",
        category="Backup",
        kb="backup-failures",
        asset_roles=("Backup server",),
        subjects=(
            "Backup repository out of space",
            "Backup failing: not enough disk space on target",
            "Backup storage full",
        ),
        bodies=(
            "Job failed: 'There is not enough space on the disk' for the repository.",
            "The backup target on {ip} is 98% full.",
        ),
        resolutions=(
            "Retention kept 60 restore points instead of 14. Corrected the retention and ran "
            "cleanup; 4 TB freed.",
            "Orphaned backup chains from deleted VMs filled the repository. Removed them on "
            "{host}.",
            "Added a new NAS volume as an extra storage location for {host}; jobs complete again.",
        ),
        open_subjects=(
            "Backups stopping because storage is full",
            "Warning about backup disk capacity",
        ),
        open_bodies=(
            "Alerts say the backup storage on {ip} is nearly full and last night's job stopped "
            "halfway.",
            "The backup system {host} ({ip}) reports low free space on the repository.",
        ),
    ),
    Scenario(
        key="mfa_new_phone",
        category="MFA",
        kb="mfa",
        asset_roles=("RADIUS server",),
        subjects=(
            "New phone - cannot approve MFA",
            "Lost phone, need MFA reset",
            "{mfa} not working on new device",
        ),
        bodies=(
            "I got a new phone and the {mfa} app no longer has my account.",
            "I can't sign in because MFA goes to my old phone.",
        ),
        resolutions=(
            "Verified identity by calling back the number in the HR record, removed the old MFA "
            "methods and had the user re-register {mfa} on the new phone.",
            "Issued a temporary access pass for 8 hours; the user enrolled the new device.",
            "The user had restored the app from a backup without the account. Reset MFA and "
            "re-added the account by QR code.",
        ),
        open_subjects=(
            "Switched phones, now can't log in",
            "Authenticator shows no accounts on my new mobile",
        ),
        open_bodies=(
            "I replaced my phone yesterday and the {mfa} app is empty, so VPN and email login "
            "fail. The RADIUS server is {ip} according to the VPN error.",
            "New mobile: sign-in asks for approval on the old phone, which I already returned. "
            "MFA server {ip}.",
        ),
        priorities=("High", "Medium"),
    ),
    Scenario(
        key="mfa_push_timeout",
        category="MFA",
        kb="mfa",
        asset_roles=("RADIUS server",),
        subjects=(
            "MFA push notifications not arriving",
            "VPN MFA prompt times out",
            "No approval request on phone when logging in",
        ),
        bodies=(
            "When I log into the VPN the push never arrives and the login times out.",
            "The MFA prompt for VPN times out after 30 seconds; server {ip}.",
        ),
        resolutions=(
            "The RADIUS timeout on the VPN gateway was 5 s, too short for push approval through "
            "{host}. Raised it to 60 s.",
            "Battery optimisation on the phone blocked {mfa} notifications. Excluded the app; "
            "pushes arrive.",
            "The MFA certificate on {host} had expired. Renewed it and restarted the "
            "authentication service.",
        ),
        open_subjects=(
            "Approve prompt never shows up on my phone",
            "VPN sign-in times out waiting for MFA",
        ),
        open_bodies=(
            "Logging into the VPN waits for the approval but nothing appears on my phone, then "
            "it fails. The VPN server is {ip}.",
            "Push approvals don't arrive anymore; I see 'RADIUS timeout' in the client. MFA "
            "server {ip}.",
        ),
    ),
)
