-- SPDX-License-Identifier: GPL-2.0-or-later
-- Wireshark/tshark dissector for openvmc capture files (pcapng, link type
-- USER0): CRQ entries, VMC layer-1 messages, RDMA transfers and the command
-- router header of layer 2. Record format: docs/capture.md.
--
--   tshark -X lua_script:dissector/openvmc.lua -r capture.pcapng -V
--   (installed in Wireshark's plugin folder, it needs no -X)

-- Installed in Wireshark's plugin folder and also named with -X, the file
-- would register the protocol twice, which Wireshark refuses: the first
-- copy loaded wins, the others say so and stand aside.
-- (Plugins do not share globals: ask Wireshark.)
for _, name in ipairs(Dissector.list()) do
	if name == "openvmc" then
		io.stderr:write("openvmc.lua: an openvmc dissector is loaded already; " ..
			debug.getinfo(1, "S").source:gsub("^@", "") .. " is ignored\n")
		return
	end
end

local p = Proto("openvmc", "openvmc VMC channel")

local kinds = { [1] = "CRQ entry", [2] = "RDMA" }
local dirs = { [0] = "partition -> hypervisor", [1] = "hypervisor -> partition" }
local sides = { [0] = "hypervisor", [1] = "partition" }
local headers = { [0x00] = "free", [0x80] = "command/response", [0xC0] = "initialization",
	[0xFF] = "transport event" }
local init_formats = { [1] = "INIT", [2] = "INIT_COMPLETE" }
local events = { [1] = "partner failed", [2] = "partner deregistered", [4] = "partner terminated",
	[6] = "partner suspended", [9] = "prepare for suspend", [10] = "resume" }
local types = { [0x01] = "CAP", [0x81] = "CAP_RESP", [0x02] = "OPEN", [0x82] = "OPEN_RESP",
	[0x03] = "CLOSE", [0x83] = "CLOSE_RESP", [0x04] = "ADD_BUF", [0x84] = "ADD_BUF_RESP",
	[0x05] = "REM_BUF", [0x85] = "REM_BUF_RESP", [0x06] = "SIGNAL" }
local owners = { [0] = "partition", [1] = "hypervisor" }
local targets = { [0x8000] = "router", [0x8001] = "LPAR configuration", [0x8002] = "DLPAR",
	[0x8003] = "VSP", [0x8004] = "CUoD/AP", [0x8005] = "concurrent maintenance" }
local opcodes = { [0x0001] = "exchange ops", [0x0002] = "close", [0x0103] = "echo" }
local rcs = { [0x0000] = "good", [0x8001] = "invalid opcode", [0x8003] = "invalid data",
	[0x8006] = "generic error", [0x8007] = "cancelled", [0x8020] = "buffer not available",
	[0x8021] = "invalid HMC index", [0x8022] = "invalid size", [0x8023] = "invalid target",
	[0x8024] = "invalid category", [0x8025] = "HMC dead", [0x8026] = "path closed",
	[0x8027] = "bind event failed", [0x8028] = "invalid state", [0x8029] = "session mismatch",
	[0x802A] = "invalid HMC instance", [0x802B] = "HMC already open",
	[0x802C] = "invalid buffer id", [0x802D] = "invalid response",
	[0x802E] = "invalid sync request" }

local f = {
	kind = ProtoField.uint8("openvmc.kind", "Record", base.DEC, kinds),
	dir = ProtoField.uint8("openvmc.dir", "Direction", base.DEC, dirs),
	side = ProtoField.uint8("openvmc.side", "Captured at", base.DEC, sides),
	partition = ProtoField.uint16("openvmc.partition", "Partition", base.DEC),
	header = ProtoField.uint8("openvmc.crq.header", "CRQ header", base.HEX, headers),
	format = ProtoField.uint8("openvmc.crq.format", "Init format", base.HEX, init_formats),
	event = ProtoField.uint8("openvmc.crq.event", "Transport event", base.HEX, events),
	type = ProtoField.uint8("openvmc.vmc.type", "VMC message", base.HEX, types),
	status = ProtoField.uint8("openvmc.vmc.status", "Status", base.DEC),
	owner = ProtoField.uint8("openvmc.vmc.owner", "Owner", base.DEC, owners),
	session = ProtoField.uint8("openvmc.vmc.session", "HMC session", base.DEC),
	index = ProtoField.uint8("openvmc.vmc.index", "HMC index", base.DEC),
	buffer = ProtoField.uint16("openvmc.vmc.buffer", "Buffer id", base.DEC),
	lioba = ProtoField.uint32("openvmc.vmc.lioba", "Buffer LIOBA", base.HEX),
	msglen = ProtoField.uint32("openvmc.vmc.msglen", "Message length", base.DEC),
	hmcs = ProtoField.uint8("openvmc.cap.hmcs", "Max HMCs", base.DEC),
	pool = ProtoField.uint16("openvmc.cap.pool", "Pool size", base.DEC),
	mtu = ProtoField.uint32("openvmc.cap.mtu", "MTU", base.DEC),
	crq = ProtoField.uint16("openvmc.cap.crq", "CRQ size", base.DEC),
	version = ProtoField.uint16("openvmc.cap.version", "Version", base.HEX),
	rlen = ProtoField.uint32("openvmc.rdma.len", "RDMA length", base.DEC),
	sliobn = ProtoField.uint32("openvmc.rdma.src_liobn", "Source LIOBN", base.HEX),
	sioba = ProtoField.uint64("openvmc.rdma.src_ioba", "Source IOBA", base.HEX),
	dliobn = ProtoField.uint32("openvmc.rdma.dst_liobn", "Destination LIOBN", base.HEX),
	dioba = ProtoField.uint64("openvmc.rdma.dst_ioba", "Destination IOBA", base.HEX),
	data = ProtoField.bytes("openvmc.rdma.data", "Data"),
	r_desc = ProtoField.uint24("openvmc.router.desc", "Descriptor", base.HEX),
	r_hlen = ProtoField.uint8("openvmc.router.hdrlen", "Header length", base.DEC),
	r_total = ProtoField.uint32("openvmc.router.total", "Total length", base.DEC),
	r_token = ProtoField.uint32("openvmc.router.token", "Correlation token", base.HEX),
	r_target = ProtoField.uint16("openvmc.router.target", "Target", base.HEX, targets),
	r_flags = ProtoField.uint8("openvmc.router.flags", "Flags", base.HEX),
	r_expect = ProtoField.bool("openvmc.router.flags.expect", "Response expected", 8, nil, 0x80),
	r_resp = ProtoField.bool("openvmc.router.flags.response", "Response", 8, nil, 0x40),
	r_dlen = ProtoField.uint32("openvmc.router.datalen", "Data length", base.DEC),
	r_op = ProtoField.uint16("openvmc.router.opcode", "Opcode", base.HEX, opcodes),
	r_rc = ProtoField.uint16("openvmc.router.rc", "Return code", base.HEX, rcs),
	r_data = ProtoField.bytes("openvmc.router.data", "Router data"),
}
p.fields = f

local function dissect_router(buf, tree, pinfo)
	local t = tree:add(p, buf(0, 32), "Command router header")
	t:add(f.r_desc, buf(0, 3))
	t:add(f.r_hlen, buf(3, 1))
	t:add(f.r_total, buf(4, 4))
	t:add(f.r_token, buf(8, 4))
	t:add(f.r_target, buf(12, 2))
	local ft = t:add(f.r_flags, buf(15, 1))
	ft:add(f.r_expect, buf(15, 1))
	ft:add(f.r_resp, buf(15, 1))
	t:add(f.r_dlen, buf(16, 4))
	t:add(f.r_op, buf(20, 2))
	t:add(f.r_rc, buf(22, 2))
	if buf:len() > 32 then
		t:add(f.r_data, buf(32))
	end
	local op = buf(20, 2):uint()
	pinfo.cols.info:append(string.format(" router %s %s token=0x%08x rc=0x%04x",
		opcodes[op] or string.format("op 0x%04x", op),
		bit.band(buf(15, 1):uint(), 0x40) ~= 0 and "response" or "request",
		buf(8, 4):uint(), buf(22, 2):uint()))
end

local function dissect_crq(buf, tree, pinfo)
	local hdr = buf(0, 1):uint()
	local fmt = buf(1, 1):uint()
	tree:add(f.header, buf(0, 1))
	if hdr == 0xC0 then
		tree:add(f.format, buf(1, 1))
		pinfo.cols.info:set(init_formats[fmt] or "INIT?")
	elseif hdr == 0xFF then
		tree:add(f.event, buf(1, 1))
		pinfo.cols.info:set("TRANSPORT " .. (events[fmt] or string.format("0x%02x", fmt)))
	elseif hdr == 0x80 then
		tree:add(f.type, buf(1, 1))
		local name = types[fmt] or string.format("type 0x%02x", fmt)
		if fmt == 0x01 or fmt == 0x81 then
			if fmt == 0x81 then tree:add(f.status, buf(2, 1)) end
			tree:add(f.hmcs, buf(5, 1))
			tree:add(f.pool, buf(6, 2))
			tree:add(f.mtu, buf(8, 4))
			tree:add(f.crq, buf(12, 2))
			tree:add(f.version, buf(14, 2))
			pinfo.cols.info:set(string.format("%s hmcs=%d pool=%d mtu=%d crq=%d ver=0x%04x",
				name, buf(5, 1):uint(), buf(6, 2):uint(), buf(8, 4):uint(),
				buf(12, 2):uint(), buf(14, 2):uint()))
		else
			tree:add(f.status, buf(2, 1))
			if fmt == 0x04 then tree:add(f.owner, buf(3, 1)) end
			tree:add(f.session, buf(4, 1))
			tree:add(f.index, buf(5, 1))
			tree:add(f.buffer, buf(6, 2))
			local extra = ""
			if fmt == 0x04 then
				tree:add(f.lioba, buf(12, 4))
				extra = string.format(" owner=%d lioba=0x%08x", buf(3, 1):uint(), buf(12, 4):uint())
			elseif fmt == 0x06 then
				tree:add(f.msglen, buf(12, 4))
				extra = string.format(" len=%d", buf(12, 4):uint())
			end
			pinfo.cols.info:set(string.format("%s status=%d sn=%d idx=%d buf=%d%s", name,
				buf(2, 1):uint(), buf(4, 1):uint(), buf(5, 1):uint(), buf(6, 2):uint(), extra))
		end
	else
		pinfo.cols.info:set(string.format("invalid CRQ header 0x%02x", hdr))
	end
end

function p.dissector(buf, pinfo, tree)
	if buf:len() < 8 or buf(0, 2):uint() ~= 0x4F56 then
		return 0
	end
	pinfo.cols.protocol:set("OPENVMC")
	local kind = buf(3, 1):uint()
	local t = tree:add(p, buf(), "openvmc " .. (kinds[kind] or "record"))
	t:add(f.kind, buf(3, 1))
	t:add(f.dir, buf(4, 1))
	t:add(f.side, buf(5, 1))
	t:add(f.partition, buf(6, 2))
	local arrow = buf(4, 1):uint() == 0 and "P->H " or "H->P "
	if kind == 1 and buf:len() >= 24 then
		dissect_crq(buf(8, 16), t, pinfo)
		pinfo.cols.info:prepend(arrow)
	elseif kind == 2 and buf:len() >= 36 then
		t:add(f.rlen, buf(8, 4))
		t:add(f.sliobn, buf(12, 4))
		t:add(f.sioba, buf(16, 8))
		t:add(f.dliobn, buf(24, 4))
		t:add(f.dioba, buf(28, 8))
		local len = buf(8, 4):uint()
		pinfo.cols.info:set(arrow .. string.format("RDMA %d bytes", len))
		if buf:len() > 36 then
			local data = buf(36)
			t:add(f.data, data)
			if data:len() >= 32 and data(0, 3):uint() == 0xDECAFF then
				dissect_router(data, t, pinfo)
			end
		end
	end
	return buf:len()
end

DissectorTable.get("wtap_encap"):add(wtap.USER0, p)
