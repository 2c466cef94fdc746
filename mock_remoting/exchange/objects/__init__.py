"""Cmdlet output as psrpcore PSObjects with the real type names and property names.

- ``dotnet``: the building blocks (a .NET object with adapted properties, typed lists);
- ``exchange``: what the Exchange endpoint's cmdlets return;
- ``windows``: what the OS endpoint's cmdlets return (CIM instances and .NET objects).
"""
