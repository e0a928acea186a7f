"""Everyday workplace problems: email, printing, slow computers and file shares."""

from __future__ import annotations

from .scenario import Scenario

SCENARIOS: tuple[Scenario, ...] = (
    Scenario(
        key="outlook_prompts",
        category="Email",
        kb="outlook-exchange",
        asset_roles=("Mail server",),
        subjects=(
            "Outlook keeps asking for password",
            "Outlook credential prompt loops",
            "Outlook disconnected and prompts for login",
        ),
        bodies=(
            "Outlook pops up the password window every few minutes even after I enter it "
            "correctly.",
            "Outlook says 'Need password' and the status bar shows Disconnected. Webmail works. "
            "Mail server {ip}.",
        ),
        resolutions=(
            "Cleared stale credentials from Windows Credential Manager, removed the old Outlook "
            "profile and created a new one; the modern-auth prompt completed once and did not "
            "return.",
            "Autodiscover pointed to a decommissioned server. Fixed the internal autodiscover SCP "
            "on {host}; Outlook connected without prompts.",
            "The user's password had expired. Reset it via self-service; Outlook reconnected "
            "after signing in once.",
        ),
        open_subjects=(
            "Mail program keeps popping up a sign-in window",
            "Outlook won't stop asking me to sign in",
        ),
        open_bodies=(
            "Every few minutes Outlook shows a login box, I type my password and it comes back. "
            "Webmail works fine. The mail server is {ip} as far as I know.",
            "Since the weekend Outlook shows 'Disconnected' and asks for my credentials again and "
            "again. Colleagues are fine. Server {host} at {ip}.",
        ),
    ),
    Scenario(
        key="mail_queue",
        category="Email",
        kb="outlook-exchange",
        asset_roles=("Mail server",),
        subjects=(
            "Emails to external recipients not delivered",
            "Outgoing mail stuck in the queue",
            "Bounce messages when sending to customers",
        ),
        bodies=(
            "Emails to customers bounce with '550 5.7.1 message rejected as spam'.",
            "Outgoing mail has been queued on {ip} since 8am; internal mail works.",
        ),
        resolutions=(
            "The queue on {host} was blocked because the send connector certificate had expired. "
            "Renewed the certificate and resumed the queue; messages delivered.",
            "The SPF record was missing the new outbound IP. Added it to the DNS TXT record; "
            "bounces stopped after propagation.",
            "The transport database volume on {host} ran low on disk and back pressure stopped "
            "mail flow. Freed space on the log volume and restarted the Transport service.",
        ),
        open_subjects=(
            "Customers aren't receiving our emails",
            "Outgoing mail sitting in the queue",
        ),
        open_bodies=(
            "Since this morning nothing we send to external addresses arrives; some come back "
            "with 'delayed delivery'. Internal email works. The Exchange box is {ip}.",
            "Our sales team's emails are stuck - the queue viewer on {ip} shows hundreds of "
            "messages waiting.",
        ),
        priorities=("High", "Urgent", "High"),
    ),
    Scenario(
        key="shared_mailbox",
        category="Email",
        kb="outlook-exchange",
        asset_roles=("Mail server",),
        subjects=(
            "Cannot open shared mailbox",
            "Shared mailbox disappeared from Outlook",
            "No access to the info@ mailbox",
        ),
        bodies=(
            "The shared mailbox info@{domain} no longer shows in Outlook.",
            "When I open the shared mailbox I get 'cannot expand the folder'.",
        ),
        resolutions=(
            "The user lacked Full Access after a team change. Granted Full Access with "
            "automapping on {host}; the mailbox appeared after an Outlook restart.",
            "Automapping broke after the migration. Added the mailbox manually as an additional "
            "mailbox in the account settings.",
            "The Outlook OST was corrupt. Rebuilt the profile; the shared mailbox folders load "
            "again.",
        ),
        open_subjects=(
            "Team mailbox not visible anymore",
            "Error opening the support@ mailbox",
        ),
        open_bodies=(
            "The support@{domain} mailbox vanished from my Outlook folder list today. Others in "
            "my team still see it. Mail server {ip}.",
            "I get 'The set of folders cannot be opened' when clicking the shared mailbox. "
            "Exchange is at {ip}.",
        ),
        priorities=("Medium", "Low"),
    ),
    Scenario(
        key="print_queue",
        category="Printing",
        kb="printing",
        asset_roles=("Print server",),
        subjects=(
            "Print jobs stuck in queue",
            "Nothing prints - documents waiting",
            "Printer queue not clearing",
        ),
        bodies=(
            "All jobs on the 2nd floor printer sit in the queue with status 'Error - Printing'.",
            "The print queue on {ip} shows 40 jobs stuck, nobody can print.",
        ),
        resolutions=(
            "Stopped the Print Spooler on {host}, deleted the stuck files in "
            "C:\\Windows\\System32\\spool\\PRINTERS and started the spooler; printing resumed.",
            "A corrupt 300-page PDF job blocked the queue. Removed it and restarted the spooler "
            "on {host}.",
            "The spooler crashed because of a faulty vendor driver. Replaced it with the vendor's "
            "universal PCL6 driver on {host}.",
        ),
        open_subjects=(
            "Documents don't come out of the printer",
            "Printing hangs for the whole department",
        ),
        open_bodies=(
            "I sent several documents to print and they just sit there with 'printing' status. "
            "Colleagues have the same problem. Print server {ip}.",
            "The print queue on {host} ({ip}) seems frozen since a big PDF was sent this morning.",
        ),
    ),
    Scenario(
        key="printer_offline",
        category="Printing",
        kb="printing",
        asset_roles=("Network printer",),
        subjects=(
            "Printer shows offline",
            "Network printer not reachable",
            "Cannot print to {host}",
        ),
        bodies=(
            "The printer shows 'Offline' in Windows but it is on and its display says ready.",
            "Cannot print to the printer at {ip}, ping times out.",
        ),
        resolutions=(
            "The printer lost its DHCP reservation after a mainboard swap and picked a new "
            "address. Restored the reservation for {ip} on the DHCP server and power-cycled it.",
            "The printer had gone into deep sleep and dropped off the network. Disabled deep "
            "sleep in the printer's web interface.",
            "The wall socket was patched to the wrong VLAN. Re-patched it to the client VLAN; the "
            "printer is reachable at {ip} again.",
        ),
        open_subjects=(
            "Printer says ready but PCs see it as offline",
            "Can't reach the copier in accounting",
        ),
        open_bodies=(
            "The printer in our corner displays 'Ready' but every PC says it's offline. It used "
            "to be {ip}.",
            "Nobody can print to the copier since it was moved. Its address is {ip} and ping "
            "doesn't answer.",
        ),
        priorities=("Medium", "Low", "Medium"),
    ),
    Scenario(
        key="slow_pc",
        category="Performance",
        kb="slow-pc",
        asset_roles=(),
        client_roles=("Wired client VLAN",),
        subjects=(
            "PC extremely slow",
            "Laptop very slow at startup",
            "Computer freezes and takes ages to log in",
        ),
        bodies=(
            "My PC takes 10 minutes to start and programs freeze.",
            "Laptop fan constantly loud and everything is slow. IP {client_ip}.",
        ),
        resolutions=(
            "The disk was at 100% because the HDD was failing (SMART warnings). Cloned it to an "
            "SSD; performance is normal.",
            "An antivirus full scan was scheduled at 9am every day. Moved it to lunchtime and "
            "excluded the ERP cache folder.",
            "Only 4 GB RAM with many browser tabs. Upgraded to 16 GB and removed six startup tray "
            "apps.",
        ),
        open_subjects=(
            "Computer crawling, takes forever to open anything",
            "Desktop freezes every few minutes",
        ),
        open_bodies=(
            "My desktop ({client_ip}) has become painfully slow: opening Excel takes a minute and "
            "the disk light is always on.",
            "Since the last update my PC freezes every few minutes. Task Manager shows disk at "
            "100%. IP address {client_ip}.",
        ),
        priorities=("Low", "Medium"),
    ),
    Scenario(
        key="slow_app",
        category="Performance",
        kb="slow-pc",
        asset_roles=("Application server",),
        subjects=(
            "{app} very slow",
            "{app} screens take minutes to load",
            "Timeouts in {app}",
        ),
        bodies=(
            "Posting orders in {app} takes over a minute since Monday.",
            "{app} on {ip} times out during month-end reports.",
        ),
        resolutions=(
            "SQL index fragmentation above 80% on the main tables. Rebuilt the indexes and "
            "updated statistics; screens load in 2 s again.",
            "A runaway report job used all CPU on {host}. Stopped it and scheduled heavy reports "
            "out of hours.",
            "{host} had 2% free memory because of a leak in the reporting service. Restarted the "
            "service and applied the vendor patch.",
        ),
        open_subjects=(
            "Orders take ages to save in {app}",
            "{app} extremely sluggish today",
        ),
        open_bodies=(
            "Saving an order in {app} takes 60-90 seconds today and the whole team is affected. "
            "Server {ip}.",
            "{app} hangs on every screen since this morning; the server is {ip} ({host}).",
        ),
        priorities=("High", "Medium", "Urgent"),
    ),
    Scenario(
        key="share_denied",
        category="File Share",
        kb="file-shares",
        asset_roles=("File server",),
        subjects=(
            "Access denied to {share_name} share",
            "Cannot open folder on file server",
            "Permission error on shared drive",
        ),
        bodies=(
            "Getting 'You do not have permission to access \\\\{host}\\{share_name}'.",
            "Access denied when opening the {share_name} folder on {ip}.",
        ),
        resolutions=(
            "The user was not in the {share_name}-RW group after a role change. Added them and "
            "had them sign out and in to refresh the token.",
            "Inheritance was broken on a subfolder. Restored inherited permissions from the "
            "parent folder on {host}.",
            "Share permissions allowed only Domain Admins after a restore. Reset the share "
            "permissions to Authenticated Users (Change) and kept the NTFS ACLs.",
        ),
        open_subjects=(
            "Told I don't have permission for the team folder",
            "Can't get into the shared {share_name} folder",
        ),
        open_bodies=(
            "Since I moved teams I get 'access denied' on the {share_name} folder on {ip}. My new "
            "manager says I should have access.",
            "Opening \\\\{host}\\{share_name} says I need permission. Server address {ip}.",
        ),
    ),
    Scenario(
        key="mapped_drive",
        category="File Share",
        kb="file-shares",
        asset_roles=("File server",),
        subjects=(
            "Mapped network drive missing",
            "Drive S: shows red X",
            "Network drive disconnected at login",
        ),
        bodies=(
            "My S: drive is gone after restarting.",
            "The drive shows a red X and 'disconnected network drive'. File server {ip}.",
        ),
        resolutions=(
            "The Group Policy drive mapping failed because of slow-link detection. Enabled "
            "'Always wait for the network at computer startup and logon' and ran gpupdate.",
            "Stored credentials for {host} were outdated. Removed them from Credential Manager "
            "and remapped the drive.",
            "The drive still pointed at an old NAS path that needed SMB1. Repointed it to "
            "\\\\{host}\\{share_name} over SMB3.",
        ),
        open_subjects=(
            "Network drive gone after reboot",
            "Shared drive shows disconnected",
        ),
        open_bodies=(
            "After the Windows update my S: drive no longer appears. Other colleagues have it. "
            "File server {ip}.",
            "My mapped drive shows a red cross and I can't open files; it maps to {host} ({ip}).",
        ),
        priorities=("Medium", "Low"),
    ),
)
