import CRabbitMQ

/// Memory for values handed to librabbitmq (strings, tables, properties), in one librabbitmq pool.
/// `reset()` keeps the pool's pages, so encoding a publish allocates nothing once warm.
/// Used only on the I/O thread.
final class CArena {
    private let pool: UnsafeMutablePointer<amqp_pool_t>

    init(pageSize: Int = 16 * 1024) {
        pool = .allocate(capacity: 1)
        init_amqp_pool(pool, pageSize)
    }

    deinit {
        empty_amqp_pool(pool)
        pool.deallocate()
    }

    /// Forgets everything encoded so far; earlier results must no longer be used.
    func reset() { recycle_amqp_pool(pool) }

    private func allocate(_ count: Int) -> amqp_bytes_t {
        var output = amqp_bytes_t()
        amqp_pool_alloc_bytes(pool, count, &output)
        return output
    }

    func bytes(_ string: String) -> amqp_bytes_t {
        var string = string
        return string.withUTF8 { bytes(UnsafeRawBufferPointer($0)) }
    }

    func bytes(_ buffer: UnsafeRawBufferPointer) -> amqp_bytes_t {
        guard buffer.count > 0, let source = buffer.baseAddress else { return amqp_empty_bytes }
        let output = allocate(buffer.count)
        output.bytes.copyMemory(from: source, byteCount: buffer.count)
        return output
    }

    /// A NUL-terminated copy, for the few librabbitmq calls that take C strings.
    func cString(_ string: String) -> UnsafePointer<CChar> {
        let utf8 = Array(string.utf8CString)
        let output = allocate(utf8.count)
        utf8.withUnsafeBytes { output.bytes.copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
        return UnsafePointer(output.bytes.assumingMemoryBound(to: CChar.self))
    }

    func table(_ table: AMQPTable) -> amqp_table_t {
        guard !table.isEmpty else { return amqp_empty_table }
        let entries = allocate(table.count * MemoryLayout<amqp_table_entry_t>.stride)
            .bytes.bindMemory(to: amqp_table_entry_t.self, capacity: table.count)
        var index = 0
        for (key, value) in table {
            entries[index] = amqp_table_entry_t(key: bytes(key), value: fieldValue(value))
            index += 1
        }
        return amqp_table_t(num_entries: Int32(table.count), entries: entries)
    }

    func fieldValue(_ value: AMQPFieldValue) -> amqp_field_value_t {
        var field = amqp_field_value_t()
        switch value {
        case .string(let string):
            field.kind = UInt8(AMQP_FIELD_KIND_UTF8.rawValue)
            field.value.bytes = bytes(string)
        case .int(let int):
            field.kind = UInt8(AMQP_FIELD_KIND_I64.rawValue)
            field.value.i64 = int
        case .bool(let bool):
            field.kind = UInt8(AMQP_FIELD_KIND_BOOLEAN.rawValue)
            field.value.boolean = bool ? 1 : 0
        case .double(let double):
            field.kind = UInt8(AMQP_FIELD_KIND_F64.rawValue)
            field.value.f64 = double
        case .timestamp(let seconds):
            field.kind = UInt8(AMQP_FIELD_KIND_TIMESTAMP.rawValue)
            field.value.u64 = seconds
        case .bytes(let raw):
            field.kind = UInt8(AMQP_FIELD_KIND_BYTES.rawValue)
            field.value.bytes = raw.withUnsafeBytes { bytes($0) }
        case .table(let nested):
            field.kind = UInt8(AMQP_FIELD_KIND_TABLE.rawValue)
            field.value.table = table(nested)
        case .array(let elements):
            field.kind = UInt8(AMQP_FIELD_KIND_ARRAY.rawValue)
            let storage = allocate(max(elements.count, 1) * MemoryLayout<amqp_field_value_t>.stride)
                .bytes.bindMemory(to: amqp_field_value_t.self, capacity: max(elements.count, 1))
            for (index, element) in elements.enumerated() { storage[index] = fieldValue(element) }
            field.value.array = amqp_array_t(num_entries: Int32(elements.count), entries: storage)
        case .void:
            field.kind = UInt8(AMQP_FIELD_KIND_VOID.rawValue)
        }
        return field
    }

    func properties(_ properties: AMQPProperties) -> amqp_basic_properties_t {
        var encoded = amqp_basic_properties_t()
        var flags: UInt32 = 0
        if let value = properties.contentType {
            encoded.content_type = bytes(value)
            flags |= UInt32(AMQP_BASIC_CONTENT_TYPE_FLAG)
        }
        if let value = properties.contentEncoding {
            encoded.content_encoding = bytes(value)
            flags |= UInt32(AMQP_BASIC_CONTENT_ENCODING_FLAG)
        }
        if !properties.headers.isEmpty {
            encoded.headers = table(properties.headers)
            flags |= UInt32(AMQP_BASIC_HEADERS_FLAG)
        }
        if let value = properties.deliveryMode {
            encoded.delivery_mode = value.rawValue
            flags |= UInt32(AMQP_BASIC_DELIVERY_MODE_FLAG)
        }
        if let value = properties.priority {
            encoded.priority = value
            flags |= UInt32(AMQP_BASIC_PRIORITY_FLAG)
        }
        if let value = properties.correlationID {
            encoded.correlation_id = bytes(value)
            flags |= UInt32(AMQP_BASIC_CORRELATION_ID_FLAG)
        }
        if let value = properties.replyTo {
            encoded.reply_to = bytes(value)
            flags |= UInt32(AMQP_BASIC_REPLY_TO_FLAG)
        }
        if let value = properties.expiration {
            encoded.expiration = bytes(value)
            flags |= UInt32(AMQP_BASIC_EXPIRATION_FLAG)
        }
        if let value = properties.messageID {
            encoded.message_id = bytes(value)
            flags |= UInt32(AMQP_BASIC_MESSAGE_ID_FLAG)
        }
        if let value = properties.timestamp {
            encoded.timestamp = value
            flags |= UInt32(AMQP_BASIC_TIMESTAMP_FLAG)
        }
        if let value = properties.type {
            encoded.type = bytes(value)
            flags |= UInt32(AMQP_BASIC_TYPE_FLAG)
        }
        if let value = properties.userID {
            encoded.user_id = bytes(value)
            flags |= UInt32(AMQP_BASIC_USER_ID_FLAG)
        }
        if let value = properties.appID {
            encoded.app_id = bytes(value)
            flags |= UInt32(AMQP_BASIC_APP_ID_FLAG)
        }
        encoded._flags = amqp_flags_t(flags)
        return encoded
    }
}

/// Reading values librabbitmq decoded. Everything is copied out, because the library reuses
/// its buffers once `amqp_maybe_release_buffers` runs.
enum CDecode {
    static func string(_ bytes: amqp_bytes_t) -> String {
        String(decoding: UnsafeRawBufferPointer(start: bytes.bytes, count: bytes.len), as: UTF8.self)
    }

    /// Whether the bytes spell `text`, compared in place.
    static func bytes(_ bytes: amqp_bytes_t, spell text: String) -> Bool {
        var text = text
        return text.withUTF8 { utf8 in
            utf8.count == bytes.len && UnsafeRawBufferPointer(start: bytes.bytes, count: bytes.len).elementsEqual(utf8)
        }
    }

    static func byteArray(_ bytes: amqp_bytes_t) -> [UInt8] {
        Array(UnsafeRawBufferPointer(start: bytes.bytes, count: bytes.len))
    }

    static func table(_ table: amqp_table_t) -> AMQPTable {
        var result = AMQPTable(minimumCapacity: Int(table.num_entries))
        for index in 0..<Int(table.num_entries) {
            let entry = table.entries[index]
            result[string(entry.key)] = fieldValue(entry.value)
        }
        return result
    }

    static func fieldValue(_ field: amqp_field_value_t) -> AMQPFieldValue {
        switch UInt32(field.kind) {
        case AMQP_FIELD_KIND_BOOLEAN.rawValue: return .bool(field.value.boolean != 0)
        case AMQP_FIELD_KIND_I8.rawValue: return .int(Int64(field.value.i8))
        case AMQP_FIELD_KIND_U8.rawValue: return .int(Int64(field.value.u8))
        case AMQP_FIELD_KIND_I16.rawValue: return .int(Int64(field.value.i16))
        case AMQP_FIELD_KIND_U16.rawValue: return .int(Int64(field.value.u16))
        case AMQP_FIELD_KIND_I32.rawValue: return .int(Int64(field.value.i32))
        case AMQP_FIELD_KIND_U32.rawValue: return .int(Int64(field.value.u32))
        case AMQP_FIELD_KIND_I64.rawValue: return .int(field.value.i64)
        case AMQP_FIELD_KIND_U64.rawValue: return .int(Int64(truncatingIfNeeded: field.value.u64))
        case AMQP_FIELD_KIND_F32.rawValue: return .double(Double(field.value.f32))
        case AMQP_FIELD_KIND_F64.rawValue: return .double(field.value.f64)
        case AMQP_FIELD_KIND_DECIMAL.rawValue:
            let decimal = field.value.decimal
            return .double(Double(decimal.value) / pow10(Int(decimal.decimals)))
        case AMQP_FIELD_KIND_UTF8.rawValue: return .string(string(field.value.bytes))
        case AMQP_FIELD_KIND_BYTES.rawValue: return .bytes(byteArray(field.value.bytes))
        case AMQP_FIELD_KIND_TIMESTAMP.rawValue: return .timestamp(field.value.u64)
        case AMQP_FIELD_KIND_TABLE.rawValue: return .table(table(field.value.table))
        case AMQP_FIELD_KIND_ARRAY.rawValue:
            let array = field.value.array
            return .array((0..<Int(array.num_entries)).map { fieldValue(array.entries[$0]) })
        default:
            return .void
        }
    }

    private static func pow10(_ exponent: Int) -> Double {
        (0..<exponent).reduce(1.0) { value, _ in value * 10 }
    }

    static func properties(_ decoded: UnsafePointer<amqp_basic_properties_t>) -> AMQPProperties {
        let raw = decoded.pointee
        let flags = UInt32(raw._flags)
        func has(_ flag: Int32) -> Bool { flags & UInt32(flag) != 0 }
        var properties = AMQPProperties()
        if has(AMQP_BASIC_CONTENT_TYPE_FLAG) { properties.contentType = string(raw.content_type) }
        if has(AMQP_BASIC_CONTENT_ENCODING_FLAG) { properties.contentEncoding = string(raw.content_encoding) }
        if has(AMQP_BASIC_HEADERS_FLAG) { properties.headers = table(raw.headers) }
        if has(AMQP_BASIC_DELIVERY_MODE_FLAG) { properties.deliveryMode = .init(rawValue: raw.delivery_mode) }
        if has(AMQP_BASIC_PRIORITY_FLAG) { properties.priority = raw.priority }
        if has(AMQP_BASIC_CORRELATION_ID_FLAG) { properties.correlationID = string(raw.correlation_id) }
        if has(AMQP_BASIC_REPLY_TO_FLAG) { properties.replyTo = string(raw.reply_to) }
        if has(AMQP_BASIC_EXPIRATION_FLAG) { properties.expiration = string(raw.expiration) }
        if has(AMQP_BASIC_MESSAGE_ID_FLAG) { properties.messageID = string(raw.message_id) }
        if has(AMQP_BASIC_TIMESTAMP_FLAG) { properties.timestamp = raw.timestamp }
        if has(AMQP_BASIC_TYPE_FLAG) { properties.type = string(raw.type) }
        if has(AMQP_BASIC_USER_ID_FLAG) { properties.userID = string(raw.user_id) }
        if has(AMQP_BASIC_APP_ID_FLAG) { properties.appID = string(raw.app_id) }
        return properties
    }

    /// librabbitmq's words for a status code.
    static func status(_ status: Int32) -> String {
        String(cString: amqp_error_string2(status))
    }
}
