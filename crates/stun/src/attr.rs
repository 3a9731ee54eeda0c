//! Attributes that `stun-types` 2.0 does not define, written on its public attribute traits.
//!
//! `stun-types` knows the RFC 8489 set (XOR-MAPPED-ADDRESS, ERROR-CODE, SOFTWARE, FINGERPRINT,
//! MESSAGE-INTEGRITY, ...) but has neither the RFC 5780 NAT-behaviour attributes
//! (CHANGE-REQUEST, RESPONSE-ORIGIN, OTHER-ADDRESS) nor a typed MAPPED-ADDRESS (it only exports
//! the address codec `MappedSocketAddr`). The crate is built to be extended this way (its
//! `Attribute`/`AttributeWrite`/`AttributeFromRaw` traits are public), so these types plug into
//! its message builder and parser like its own attributes; only the 4-byte CHANGE-REQUEST value
//! is encoded by hand, the addresses reuse `MappedSocketAddr`.

use std::net::SocketAddr;

use stun_types::attribute::{
    Attribute, AttributeFromRaw, AttributeStaticType, AttributeType, AttributeWrite,
    AttributeWriteExt, MappedSocketAddr, RawAttribute,
};
use stun_types::message::StunParseError;

/// MAPPED-ADDRESS (RFC 8489 §14.1, type 0x0001): the plain mapped address that RFC 3489 clients
/// read (they predate XOR-MAPPED-ADDRESS).
pub const MAPPED_ADDRESS: AttributeType = AttributeType::new(0x0001);
/// CHANGE-REQUEST (RFC 5780 §7.2, type 0x0003; also RFC 3489 §11.2.4).
pub const CHANGE_REQUEST: AttributeType = AttributeType::new(0x0003);
/// SOURCE-ADDRESS (RFC 3489 §11.2.3, type 0x0004): RFC 3489's name for RESPONSE-ORIGIN.
pub const SOURCE_ADDRESS: AttributeType = AttributeType::new(0x0004);
/// CHANGED-ADDRESS (RFC 3489 §11.2.3, type 0x0005): RFC 3489's name for OTHER-ADDRESS.
pub const CHANGED_ADDRESS: AttributeType = AttributeType::new(0x0005);
/// PADDING (RFC 5780 §7.6, type 0x0026): understood and ignored (it only pads the request).
pub const PADDING: AttributeType = AttributeType::new(0x0026);
/// RESPONSE-PORT (RFC 5780 §7.5, type 0x0027): send the answer to this port of the
/// request's source IP (a 16-bit port, then 2 bytes of padding).
pub const RESPONSE_PORT: AttributeType = AttributeType::new(0x0027);
/// RESPONSE-ORIGIN (RFC 5780 §7.3, type 0x802b).
pub const RESPONSE_ORIGIN: AttributeType = AttributeType::new(0x802b);
/// OTHER-ADDRESS (RFC 5780 §7.4, type 0x802c).
pub const OTHER_ADDRESS: AttributeType = AttributeType::new(0x802c);

/// Defines an attribute whose value is a plain (not XOR-ed) address.
macro_rules! address_attribute {
    ($(#[$doc:meta])* $name:ident, $ty:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq)]
        pub struct $name(MappedSocketAddr);

        impl $name {
            /// The attribute carrying `addr`.
            pub fn new(addr: SocketAddr) -> Self {
                Self(MappedSocketAddr::new(addr))
            }
            /// The address carried.
            pub fn addr(&self) -> SocketAddr {
                self.0.addr()
            }
        }
        impl AttributeStaticType for $name {
            const TYPE: AttributeType = $ty;
        }
        impl Attribute for $name {
            fn get_type(&self) -> AttributeType {
                Self::TYPE
            }
            fn length(&self) -> u16 {
                self.0.length()
            }
        }
        impl AttributeWrite for $name {
            fn to_raw(&self) -> RawAttribute<'_> {
                self.0.to_raw(Self::TYPE)
            }
            fn write_into_unchecked(&self, dest: &mut [u8]) {
                self.write_header_unchecked(dest);
                self.0.write_into_unchecked(&mut dest[4..]);
            }
        }
        impl AttributeFromRaw<'_> for $name {
            fn from_raw_ref(raw: &RawAttribute) -> Result<Self, StunParseError> {
                raw.check_type_and_len(Self::TYPE, ..)?;
                Ok(Self(MappedSocketAddr::from_raw(raw)?))
            }
        }
    };
}

address_attribute!(
    /// MAPPED-ADDRESS (RFC 8489 §14.1).
    MappedAddress,
    MAPPED_ADDRESS
);
address_attribute!(
    /// RESPONSE-ORIGIN (RFC 5780 §7.3): the address the response was sent from.
    ResponseOrigin,
    RESPONSE_ORIGIN
);
address_attribute!(
    /// OTHER-ADDRESS (RFC 5780 §7.4): the server's address that differs from the one the request
    /// reached in both IP and port.
    OtherAddress,
    OTHER_ADDRESS
);

/// CHANGE-REQUEST (RFC 5780 §7.2): asks the server to answer from its other IP and/or port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ChangeRequest {
    /// Answer from the alternate IP address (flag A, 0x4).
    pub change_ip: bool,
    /// Answer from the alternate port (flag B, 0x2).
    pub change_port: bool,
}

impl ChangeRequest {
    const IP: u8 = 0x04;
    const PORT: u8 = 0x02;

    /// The 4-byte value: 29 zero bits, A, B, one unused bit.
    fn value(&self) -> [u8; 4] {
        let mut flags = 0;
        if self.change_ip {
            flags |= Self::IP;
        }
        if self.change_port {
            flags |= Self::PORT;
        }
        [0, 0, 0, flags]
    }

    /// Reads the 4-byte value (RFC 3489 uses the same layout).
    pub fn from_value(value: &[u8]) -> Option<Self> {
        let [_, _, _, flags] = <[u8; 4]>::try_from(value).ok()?;
        Some(Self {
            change_ip: flags & Self::IP != 0,
            change_port: flags & Self::PORT != 0,
        })
    }

    /// True when the server is asked to answer from somewhere else than the request reached.
    pub fn changes_anything(&self) -> bool {
        self.change_ip || self.change_port
    }
}

/// Reads a RESPONSE-PORT value: the port, with or without its 2 bytes of padding; never 0.
pub fn response_port(value: &[u8]) -> Option<u16> {
    match value {
        [hi, lo] | [hi, lo, _, _] => Some(u16::from_be_bytes([*hi, *lo])).filter(|p| *p != 0),
        _ => None,
    }
}

impl AttributeStaticType for ChangeRequest {
    const TYPE: AttributeType = CHANGE_REQUEST;
}
impl Attribute for ChangeRequest {
    fn get_type(&self) -> AttributeType {
        Self::TYPE
    }
    fn length(&self) -> u16 {
        4
    }
}
impl AttributeWrite for ChangeRequest {
    fn to_raw(&self) -> RawAttribute<'_> {
        RawAttribute::new_owned(Self::TYPE, Box::new(self.value()))
    }
    fn write_into_unchecked(&self, dest: &mut [u8]) {
        self.write_header_unchecked(dest);
        dest[4..8].copy_from_slice(&self.value());
    }
}
impl AttributeFromRaw<'_> for ChangeRequest {
    fn from_raw_ref(raw: &RawAttribute) -> Result<Self, StunParseError> {
        raw.check_type_and_len(Self::TYPE, 4..=4)?;
        Self::from_value(&raw.value).ok_or(StunParseError::InvalidAttributeData)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use stun_types::message::{
        Message, MessageClass, MessageType, MessageWrite, MessageWriteExt, MessageWriteVec, BINDING,
    };

    #[test]
    fn rfc5780_7_2_change_request_flags_are_bits_a_and_b() {
        let cr = ChangeRequest {
            change_ip: true,
            change_port: false,
        };
        assert_eq!(
            cr.to_raw().to_bytes(),
            [0x00, 0x03, 0x00, 0x04, 0, 0, 0, 0x04]
        );
        let both = ChangeRequest {
            change_ip: true,
            change_port: true,
        };
        assert_eq!(both.to_raw().to_bytes()[7], 0x06);
        assert_eq!(
            ChangeRequest::from_value(&[0, 0, 0, 0x02]).map(|c| c.change_port),
            Some(true)
        );
        assert_eq!(ChangeRequest::from_value(&[0, 0, 0]), None);
    }

    #[test]
    fn rfc5780_7_3_7_4_addresses_round_trip_through_stun_types() {
        let origin: SocketAddr = "198.51.100.10:3478".parse().expect("literal");
        let other: SocketAddr = "[2001:db8::2]:3479".parse().expect("literal");
        let mut w = Message::builder(
            MessageType::from_class_method(MessageClass::Success, BINDING),
            7.into(),
            MessageWriteVec::new(),
        );
        w.add_attribute(&ResponseOrigin::new(origin)).expect("vec");
        w.add_attribute(&OtherAddress::new(other)).expect("vec");
        w.add_attribute(&MappedAddress::new(origin)).expect("vec");
        let bytes = w.finish();
        let msg = Message::from_bytes(&bytes).expect("parse");
        assert_eq!(
            msg.attribute::<ResponseOrigin>().map(|a| a.addr()).ok(),
            Some(origin)
        );
        assert_eq!(
            msg.attribute::<OtherAddress>().map(|a| a.addr()).ok(),
            Some(other)
        );
        assert_eq!(
            msg.attribute::<MappedAddress>().map(|a| a.addr()).ok(),
            Some(origin)
        );
    }
}
