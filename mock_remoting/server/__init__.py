"""The lab's protocol server: HTTP(S), authentication, WS-Management, PSRP and WinRS."""
