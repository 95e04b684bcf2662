"""Example models audited by ``audits/*.yaml`` and the script that trains them."""
