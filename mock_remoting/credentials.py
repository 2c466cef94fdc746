"""The lab's own credentials.

THROWAWAY, LAB-ONLY VALUES. They protect nothing: the lab binds to 127.0.0.1 and exists so
that exfix's real authentication code (Basic, NTLM with message encryption) runs against a
server. They are written into the inventory that ``exfix lab serve`` generates.
"""

LAB_USERNAME = "exfix-lab"
LAB_DOMAIN = "CONTOSO"
LAB_PASSWORD = "lab-throwaway-Passw0rd!"
