-- SPDX-License-Identifier: GPL-2.0-or-later
-- Wireshark/tshark dissector for openvmc capture files (pcapng, link type
-- USER0): CRQ entries, VMC layer-1 messages and RDMA transfers
-- (protocol "openvmc"), and the command router of layer 2 in RDMA data
-- (protocol "openvmc.router", docs/router.md). Protocol errors are expert
-- info (Analyze > Expert Information; tshark -z expert). Record format:
-- docs/capture.md.
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
local pr = Proto("openvmc.router", "openvmc command router")

local RECORD_VERSION = 1
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
-- Status of each response type, Linux numbering (docs/protocol.md 5).
local statuses = {
	[0x81] = { [0] = "success", [1] = "failure", [2] = "invalid version" },
	[0x82] = { [0] = "success" },
	[0x83] = { [0] = "success" },
	[0x84] = { [0] = "success", [1] = "invalid HMC index", [2] = "invalid buffer id",
		[3] = "closed HMC", [4] = "interface failure" },
	[0x85] = { [0] = "success", [1] = "invalid HMC index", [5] = "no buffer" },
}
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
local ROUTER_HDR_LEN, ROUTER_MAX_MSG = 32, 4096

local f = {
	version = ProtoField.uint8("openvmc.version", "Record version", base.DEC),
	kind = ProtoField.uint8("openvmc.kind", "Record", base.DEC, kinds),
	dir = ProtoField.uint8("openvmc.dir", "Direction", base.DEC, dirs),
	side = ProtoField.uint8("openvmc.side", "Captured at", base.DEC, sides),
	partition = ProtoField.uint16("openvmc.partition", "Partition", base.DEC),
	header = ProtoField.uint8("openvmc.crq.header", "CRQ header", base.HEX, headers),
	format = ProtoField.uint8("openvmc.crq.format", "Init format", base.HEX, init_formats),
	event = ProtoField.uint8("openvmc.crq.event", "Transport event", base.HEX, events),
	type = ProtoField.uint8("openvmc.vmc.type", "VMC message", base.HEX, types),
	status = ProtoField.uint8("openvmc.vmc.status", "Status", base.DEC),
	status_name = ProtoField.string("openvmc.vmc.status_name", "Status name"),
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
	cversion = ProtoField.uint16("openvmc.cap.version", "Version", base.HEX),
	rlen = ProtoField.uint32("openvmc.rdma.len", "RDMA length", base.DEC),
	sliobn = ProtoField.uint32("openvmc.rdma.src_liobn", "Source LIOBN", base.HEX),
	sioba = ProtoField.uint64("openvmc.rdma.src_ioba", "Source IOBA", base.HEX),
	dliobn = ProtoField.uint32("openvmc.rdma.dst_liobn", "Destination LIOBN", base.HEX),
	dioba = ProtoField.uint64("openvmc.rdma.dst_ioba", "Destination IOBA", base.HEX),
	data = ProtoField.bytes("openvmc.rdma.data", "Data"),
	raw = ProtoField.bytes("openvmc.body", "Undecoded body"),
}
p.fields = f

local fr = {
	desc = ProtoField.uint24("openvmc.router.desc", "Descriptor", base.HEX),
	hlen = ProtoField.uint8("openvmc.router.hdrlen", "Header length", base.DEC),
	total = ProtoField.uint32("openvmc.router.total", "Total length", base.DEC),
	token = ProtoField.uint32("openvmc.router.token", "Correlation token", base.HEX),
	target = ProtoField.uint16("openvmc.router.target", "Target", base.HEX, targets),
	flags = ProtoField.uint8("openvmc.router.flags", "Flags", base.HEX),
	expect = ProtoField.bool("openvmc.router.flags.expect", "Response expected", 8, nil, 0x80),
	resp = ProtoField.bool("openvmc.router.flags.response", "Response", 8, nil, 0x40),
	dlen = ProtoField.uint32("openvmc.router.datalen", "Data length", base.DEC),
	op = ProtoField.uint16("openvmc.router.opcode", "Opcode", base.HEX, opcodes),
	rc = ProtoField.uint16("openvmc.router.rc", "Return code", base.HEX, rcs),
	data = ProtoField.bytes("openvmc.router.data", "Router data"),
}
pr.fields = fr

local E, S = expert.group, expert.severity
local ex = {
	record_version = ProtoExpert.new("openvmc.expert.record_version", "Unknown record version",
		E.MALFORMED, S.ERROR),
	record_kind = ProtoExpert.new("openvmc.expert.record_kind", "Unknown record kind",
		E.MALFORMED, S.ERROR),
	record_field = ProtoExpert.new("openvmc.expert.record_field", "Unknown direction or side",
		E.MALFORMED, S.ERROR),
	record_length = ProtoExpert.new("openvmc.expert.record_length", "Record of the wrong size",
		E.MALFORMED, S.ERROR),
	crq_header = ProtoExpert.new("openvmc.expert.crq_header", "Bad CRQ header byte",
		E.MALFORMED, S.ERROR),
	crq_type = ProtoExpert.new("openvmc.expert.crq_type",
		"Unknown message type, init format or transport event", E.PROTOCOL, S.ERROR),
	vmc_status = ProtoExpert.new("openvmc.expert.vmc_status", "VMC response status not success",
		E.RESPONSE_CODE, S.WARN),
	transport = ProtoExpert.new("openvmc.expert.transport", "Transport event: the channel resets",
		E.SEQUENCE, S.NOTE),
	rdma_length = ProtoExpert.new("openvmc.expert.rdma_length",
		"RDMA length disagrees with the data", E.MALFORMED, S.ERROR),
}
p.experts = ex
local exr = {
	rc = ProtoExpert.new("openvmc.router.expert.rc", "Router return code not good",
		E.RESPONSE_CODE, S.WARN),
	header = ProtoExpert.new("openvmc.router.expert.header", "Malformed router header",
		E.MALFORMED, S.ERROR),
}
pr.experts = exr

local function name_of(t, v, fmt)
	return t[v] or string.format(fmt or "0x%02x", v)
end

-- The command router (layer 2) in the data of an RDMA transfer: its own
-- protocol, its own top-level tree item, its own layer.
function pr.dissector(buf, pinfo, tree)
	local len = buf:len()
	local t = tree:add(pr, buf(0, math.min(len, ROUTER_HDR_LEN)))
	t:add(fr.desc, buf(0, 3))
	if len < ROUTER_HDR_LEN then
		t:add_proto_expert_info(exr.header,
			string.format("Router message of %d bytes: the header alone is 32", len))
		pinfo.cols.info:append(" router (truncated)")
		return len
	end
	local hlen, total, dlen = buf(3, 1):uint(), buf(4, 4):uint(), buf(16, 4):uint()
	local flags, op, rc = buf(15, 1):uint(), buf(20, 2):uint(), buf(22, 2):uint()
	local response = bit.band(flags, 0x40) ~= 0
	local hi = t:add(fr.hlen, buf(3, 1))
	if hlen ~= ROUTER_HDR_LEN then
		hi:add_proto_expert_info(exr.header, string.format("Header length %d, not 32", hlen))
	end
	local ti = t:add(fr.total, buf(4, 4))
	if total ~= len then
		ti:add_proto_expert_info(exr.header,
			string.format("Total length %d, but the message has %d bytes", total, len))
	elseif total > ROUTER_MAX_MSG then
		ti:add_proto_expert_info(exr.header, string.format("Total length %d above 4096", total))
	end
	t:add(fr.token, buf(8, 4))
	t:add(fr.target, buf(12, 2))
	local ft = t:add(fr.flags, buf(15, 1))
	ft:add(fr.expect, buf(15, 1))
	ft:add(fr.resp, buf(15, 1))
	local di = t:add(fr.dlen, buf(16, 4))
	if dlen + ROUTER_HDR_LEN ~= total then
		di:add_proto_expert_info(exr.header,
			string.format("Data length %d, but total length - 32 is %d", dlen, total - ROUTER_HDR_LEN))
	end
	t:add(fr.op, buf(20, 2))
	local ri = t:add(fr.rc, buf(22, 2))
	if response and rc ~= 0 then
		ri:add_proto_expert_info(exr.rc, string.format("Router return code 0x%04x (%s)", rc,
			name_of(rcs, rc, "unknown")))
	end
	if len > ROUTER_HDR_LEN then
		t:add(fr.data, buf(ROUTER_HDR_LEN))
	end
	t:append_text(string.format(", %s %s, token 0x%08x", name_of(opcodes, op, "op 0x%04x"),
		response and "response" or "request", buf(8, 4):uint()))
	pinfo.cols.info:append(string.format(" router %s %s token=0x%08x rc=0x%04x",
		name_of(opcodes, op, "op 0x%04x"), response and "response" or "request",
		buf(8, 4):uint(), rc))
	if response and rc ~= 0 then
		pinfo.cols.info:append(" (" .. name_of(rcs, rc, "unknown") .. ")")
	end
	return len
end

local function add_status(tree, buf, fmt, pinfo)
	local st = buf(2, 1):uint()
	local names = statuses[fmt]
	local item = tree:add(f.status, buf(2, 1))
	local name = names[st] or (st ~= 0 and (fmt == 0x82 or fmt == 0x83) and "failure") or "unknown"
	item:append_text(" (" .. name .. ")")
	tree:add(f.status_name, buf(2, 1), name):set_generated()
	if st ~= 0 then
		item:add_proto_expert_info(ex.vmc_status, string.format("%s status %d (%s)",
			types[fmt], st, name))
	end
	return st, name
end

local function dissect_crq(buf, tree, pinfo)
	local hdr = buf(0, 1):uint()
	local fmt = buf(1, 1):uint()
	local hi = tree:add(f.header, buf(0, 1))
	if hdr == 0xC0 then
		local fi = tree:add(f.format, buf(1, 1))
		if not init_formats[fmt] then
			fi:add_proto_expert_info(ex.crq_type, string.format("Unknown init format 0x%02x", fmt))
		end
		pinfo.cols.info:set(init_formats[fmt] or string.format("INIT format 0x%02x", fmt))
	elseif hdr == 0xFF then
		local ei = tree:add(f.event, buf(1, 1))
		if events[fmt] then
			ei:add_proto_expert_info(ex.transport, "Transport event: " .. events[fmt])
		else
			ei:add_proto_expert_info(ex.crq_type, string.format("Unknown transport event 0x%02x", fmt))
		end
		pinfo.cols.info:set("TRANSPORT " .. name_of(events, fmt))
	elseif hdr == 0x80 then
		local ti = tree:add(f.type, buf(1, 1))
		local name = types[fmt]
		if not name then
			ti:add_proto_expert_info(ex.crq_type, string.format("Unknown VMC message type 0x%02x", fmt))
			pinfo.cols.info:set(string.format("VMC type 0x%02x", fmt))
			return
		end
		local status = ""
		if statuses[fmt] then
			local st, sname = add_status(tree, buf, fmt, pinfo)
			status = string.format(" status=%d", st) .. (st ~= 0 and " (" .. sname .. ")" or "")
		end
		if fmt == 0x01 or fmt == 0x81 then
			tree:add(f.hmcs, buf(5, 1))
			tree:add(f.pool, buf(6, 2))
			tree:add(f.mtu, buf(8, 4))
			tree:add(f.crq, buf(12, 2))
			tree:add(f.cversion, buf(14, 2))
			pinfo.cols.info:set(string.format("%s%s hmcs=%d pool=%d mtu=%d crq=%d ver=0x%04x",
				name, status, buf(5, 1):uint(), buf(6, 2):uint(), buf(8, 4):uint(),
				buf(12, 2):uint(), buf(14, 2):uint()))
		else
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
			pinfo.cols.info:set(string.format("%s%s sn=%d idx=%d buf=%d%s", name, status,
				buf(4, 1):uint(), buf(5, 1):uint(), buf(6, 2):uint(), extra))
		end
	else
		hi:add_proto_expert_info(ex.crq_header, string.format(
			"CRQ header byte 0x%02x: neither 0x80, 0xC0 nor 0xFF%s", hdr,
			hdr == 0 and " (a free slot, never sent)" or ""))
		pinfo.cols.info:set(string.format("invalid CRQ header 0x%02x", hdr))
	end
end

local function dissect_rdma(buf, t, pinfo, root)
	t:add(f.rlen, buf(8, 4))
	t:add(f.sliobn, buf(12, 4))
	t:add(f.sioba, buf(16, 8))
	t:add(f.dliobn, buf(24, 4))
	t:add(f.dioba, buf(28, 8))
	local len, have = buf(8, 4):uint(), buf:len() - 36
	pinfo.cols.info:set(string.format("RDMA %d bytes", len))
	if len ~= have then
		t:add_proto_expert_info(ex.rdma_length, string.format(
			"RDMA length %d, but the record holds %d bytes of data", len, have))
	end
	if have > 0 then
		local data = buf(36)
		t:add(f.data, data)
		if have >= 3 and data(0, 3):uint() == 0xDECAFF then
			Dissector.get("openvmc.router"):call(data:tvb(), pinfo, root)
		end
	end
end

function p.dissector(buf, pinfo, tree)
	if buf:len() < 4 or buf(0, 2):uint() ~= 0x4F56 then
		return 0
	end
	pinfo.cols.protocol:set("OPENVMC")
	local version, kind = buf(2, 1):uint(), buf(3, 1):uint()
	local t = tree:add(p, buf(), "openvmc " .. (kinds[kind] or "record"))
	local vi = t:add(f.version, buf(2, 1))
	local ki = t:add(f.kind, buf(3, 1))
	if version ~= RECORD_VERSION then
		vi:add_proto_expert_info(ex.record_version, string.format(
			"Record version %d: this dissector knows version %d", version, RECORD_VERSION))
		pinfo.cols.info:set(string.format("record version %d", version))
		if buf:len() > 4 then t:add(f.raw, buf(4)) end
		return buf:len()
	end
	if buf:len() < 8 then
		t:add_proto_expert_info(ex.record_length, string.format(
			"Record of %d bytes: the header alone is 8", buf:len()))
		pinfo.cols.info:set("truncated record")
		return buf:len()
	end
	local di = t:add(f.dir, buf(4, 1))
	local si = t:add(f.side, buf(5, 1))
	t:add(f.partition, buf(6, 2))
	local dir = buf(4, 1):uint()
	if not dirs[dir] then
		di:add_proto_expert_info(ex.record_field, string.format("Unknown direction %d", dir))
	end
	if not sides[buf(5, 1):uint()] then
		si:add_proto_expert_info(ex.record_field, string.format("Unknown side %d", buf(5, 1):uint()))
	end
	local arrow = dir == 0 and "P->H " or dir == 1 and "H->P " or "?->? "
	if kind == 1 then
		if buf:len() ~= 24 then
			t:add_proto_expert_info(ex.record_length, string.format(
				"CRQ record of %d bytes: an entry is 16, the record 24", buf:len()))
		end
		if buf:len() >= 24 then
			dissect_crq(buf(8, 16), t, pinfo)
		else
			pinfo.cols.info:set("truncated CRQ entry")
		end
	elseif kind == 2 then
		if buf:len() < 36 then
			t:add_proto_expert_info(ex.record_length, string.format(
				"RDMA record of %d bytes: its header alone is 36", buf:len()))
			pinfo.cols.info:set("truncated RDMA record")
		else
			dissect_rdma(buf, t, pinfo, tree)
		end
	else
		ki:add_proto_expert_info(ex.record_kind, string.format("Unknown record kind %d", kind))
		pinfo.cols.info:set(string.format("record kind %d", kind))
		t:add(f.raw, buf(8))
	end
	pinfo.cols.info:prepend(arrow)
	return buf:len()
end

DissectorTable.get("wtap_encap"):add(wtap.USER0, p)
